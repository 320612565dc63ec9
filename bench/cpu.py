"""Where a pass's CPU time went: each thread of this process, and its children.

The cold-ingest target is a ratio of wall times; when it is missed, the split says which part
of the service held the time. Threads are told apart by name ("store_0" is the store thread,
"MainThread" runs the event loop) and read from /proc while they live: an executor's thread is
gone, counters and all, by the time the pass returns. Children are the parse workers, counted
by the kernel once they have ended (the pass ends its pool); the farm, still running, is not.
The farm serving the feeds is read from its own /proc entry while it runs. What the whole
machine spent besides is the rest: PostgreSQL's server, whose work shares the same cores.
"""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PARTS = {"MainThread": "event loop (fetching)", "store_0": "store thread"}
BENCH_THREAD = "bench-"  # the bench's own watchers, left out of the split
FARM = "the farm (serving the feeds)"


class CpuSplit:
    """CPU seconds by part while in use: `parts` maps a part's name to its seconds, and
    `this_process` sums the parts that are this process's threads."""

    def __init__(self, farm_pid: int, interval: float = 0.2) -> None:
        self.parts: dict[str, float] = {}
        self._farm_pid = farm_pid
        self._interval = interval
        self.this_process = 0.0  # the threads' parts together
        self._seconds: dict[int, tuple[str, float]] = {}  # thread id -> (part, CPU so far)
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"{BENCH_THREAD}cpu")

    def __enter__(self) -> CpuSplit:
        self._before = self._sample()
        self._children = _children_seconds()
        self._machine = _machine_seconds()
        self._farm = _process_seconds(self._farm_pid)
        self._watcher.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._watcher.join()
        self._seconds.update(self._sample())
        for tid, (part, seconds) in self._seconds.items():
            used = seconds - self._before.get(tid, (part, 0.0))[1]
            self.parts[part] = self.parts.get(part, 0.0) + used
        self.this_process = sum(self.parts.values())
        workers = _children_seconds() - self._children
        self.parts["parse workers (other processes)"] = workers
        farm = _process_seconds(self._farm_pid) - self._farm
        self.parts[FARM] = farm
        besides = _machine_seconds() - self._machine - self.this_process - workers - farm
        self.parts["rest of the machine (database server, ...)"] = max(besides, 0.0)

    def _watch(self) -> None:
        while not self._done.wait(self._interval):
            self._seconds.update(self._sample())

    @staticmethod
    def _sample() -> dict[int, tuple[str, float]]:
        names = {thread.native_id: thread.name for thread in threading.enumerate()}
        seconds = {}
        for task in Path("/proc/self/task").iterdir():
            tid = int(task.name)
            name = names.get(tid, "")
            if name.startswith(BENCH_THREAD):
                continue
            try:
                used = _stat_seconds(task / "stat")
            except OSError:
                continue  # ended meanwhile
            seconds[tid] = (_PARTS.get(name, "other threads (pool results, ...)"), used)
        return seconds


def _stat_seconds(stat: Path) -> float:
    """CPU seconds (user and system) of a process or thread, from its /proc stat file."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _process_seconds(pid: int) -> float:
    return _stat_seconds(Path(f"/proc/{pid}/stat"))


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_seconds() -> float:
    """CPU seconds every core of the machine has been busy since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / _TICKS
