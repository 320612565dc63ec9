"""`python -m bench [--items N] [--runs R]`: run the benchmarks and print their tables."""

from __future__ import annotations

import argparse
import os

from bench import dedupe, match


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--items", type=int, default=50_000, help="items to match (default 50,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument(
        "--only", choices=["match", "dedupe"], help="run one benchmark (default: all)"
    )
    args = parser.parse_args()
    # "One core" literally: pinning stops the scheduler moving the process mid-measurement,
    # which on a small shared machine is most of the run-to-run noise.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    if args.only in (None, "match"):
        print("\n".join(match.run(items=args.items, runs=args.runs)), end="\n\n", flush=True)
    if args.only in (None, "dedupe"):
        print("\n".join(dedupe.run(runs=min(args.runs, 3))), flush=True)


main()
