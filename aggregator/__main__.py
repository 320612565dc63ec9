"""`python -m aggregator`: the same command as the installed `aggregator`."""

from aggregator.cli import main

main()
