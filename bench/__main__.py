"""`python -m bench [--items N] [--runs R]`: run the benchmarks and print their tables."""

from __future__ import annotations

import argparse
import os

from bench import match


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--items", type=int, default=50_000, help="items to match (default 50,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()
    # "One core" literally: pinning stops the scheduler moving the process mid-measurement,
    # which on a small shared machine is most of the run-to-run noise.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    print("\n".join(match.run(items=args.items, runs=args.runs)))


main()
