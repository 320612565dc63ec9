"""`python -m bench [--items N] [--runs R]`: run the benchmarks and print their tables."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main() -> None:
    # Imported here, not at the top: the service's parse workers are spawned, and a spawned
    # process imports its parent's main module. This one must cost them what the `aggregator`
    # command costs them, not every benchmark's imports (0.4 s more to a pool's first result).
    from bench import cli, dedupe, farm, match, site

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--items", type=int, default=50_000, help="items to match (default 50,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument(
        "--only",
        choices=["match", "dedupe", "farm", "site", "cli"],
        help="run one benchmark (default: all)",
    )
    parser.add_argument("--feeds", type=int, default=1_000, help="feed farm: feeds")
    parser.add_argument("--per-feed", type=int, default=50, help="feed farm: items per feed")
    parser.add_argument(
        "--database-url", help="feed farm and site: PostgreSQL URL (default: SQLite)"
    )
    parser.add_argument(
        "--site-baseline", type=Path, help="site: a worktree of an earlier version to compare"
    )
    args = parser.parse_args()
    if args.only in (None, "farm"):  # the whole service: both cores, as it runs
        lines = farm.run(args.feeds, args.per_feed, min(args.runs, 3), args.database_url)
        print("\n".join(lines), end="\n\n", flush=True)
    if args.only in (None, "site"):  # the server as it runs: both cores
        lines = site.run(min(args.runs, 3), args.database_url, args.site_baseline)
        print("\n".join(lines), end="\n\n", flush=True)
    if args.only in (None, "cli"):
        print("\n".join(cli.run(args.runs)), end="\n\n", flush=True)
    # "One core" literally: pinning stops the scheduler moving the process mid-measurement,
    # which on a small shared machine is most of the run-to-run noise.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    if args.only in (None, "match"):
        print("\n".join(match.run(items=args.items, runs=args.runs)), end="\n\n", flush=True)
    if args.only in (None, "dedupe"):
        print("\n".join(dedupe.run(runs=min(args.runs, 3))), flush=True)


if __name__ == "__main__":
    main()
