"""Freed memory goes back to the system when the store thread asks (glibc, as on Debian)."""

from __future__ import annotations

from aggregator import free_pages


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return kilobytes / 1024


def test_pages_freed_below_memory_in_use_are_returned() -> None:
    # 40 MB in 1 kB chunks (glibc's heap, not Python's small-object arenas), then every
    # chunk freed but one in sixteen: the pages between those still in use are free but stay
    # resident, as a pass's were.
    chunks = [bytearray(1000) for _ in range(40_000)]
    kept = chunks[::16]
    del chunks
    before = resident_mb()
    free_pages.return_to_system()
    after = resident_mb()
    assert before - after > 20, (before, after)
    del kept  # held until here: the pages they lie in stay in use
