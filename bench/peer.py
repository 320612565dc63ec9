"""The peer the feed farm compares against, lemon24/reader (the `bench` extra), in a process
of its own that imports nothing of ours, so its memory is its own:

    python -m bench.peer DATABASE < urls.json

ingests every URL into a fresh reader database (every feed new), refreshes them all once
(every feed answering 304), and prints {"cold": s, "warm": s, "peak_mb": MB} as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from reader import make_reader

WORKERS = 16  # reader's fetching threads: the service's `concurrency`


def main() -> None:
    database, urls = sys.argv[1], json.load(sys.stdin)
    reader = make_reader(database)
    for url in urls:
        reader.add_feed(url)
    started = time.perf_counter()
    reader.update_feeds(scheduled=False, workers=WORKERS)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    reader.update_feeds(scheduled=False, workers=WORKERS)
    warm = time.perf_counter() - started
    reader.close()
    json.dump({"cold": cold, "warm": warm, "peak_mb": _peak_mb()}, sys.stdout)


def _peak_mb() -> float:
    """This process's peak resident memory, from VmHWM, which counts from its exec. Not
    ru_maxrss: Linux carries that over exec, so it would report the bench's own peak whenever
    the bench, which started this process, had been bigger."""
    status = Path("/proc/self/status").read_text()
    return (
        next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        / 1024
    )


if __name__ == "__main__":
    main()
