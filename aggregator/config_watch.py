"""Notice that config.toml changed, or that SIGHUP asked for a reload, and say so once.

A thread looks at the file's size, modification time and inode a few times a second (an
editor that saves by replacing the file changes the inode) and calls back once the file has
stayed the same for one look, so a save caught half-written is not read. SIGHUP only sets a
flag (a signal handler must not take locks); the same thread acts on it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from aggregator import logs

log = logs.get_logger(__name__)

POLL_SECONDS = 0.25

Signature = tuple[int, int, int] | None


class ConfigWatch:
    """Calls `on_change` in its own thread when `path` changes or SIGHUP arrives, and
    `every_minute` about once a minute, until `stopping` is set."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[str], None],
        stopping: threading.Event,
        every_minute: Callable[[], None] = lambda: None,
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._every_minute = every_minute
        self._stopping = stopping
        self._hangup = False
        self._thread = threading.Thread(target=self._watch, name="config-watch", daemon=True)

    def start(self) -> None:
        """Begin watching; installs the SIGHUP handler (call from the main thread)."""
        signal.signal(signal.SIGHUP, self._on_hangup)
        self._thread.start()

    def _on_hangup(self, _signum: int, _frame: FrameType | None) -> None:
        self._hangup = True

    def _watch(self) -> None:
        seen = _signature(self._path)
        pending: Signature = seen
        ticks = 0
        while not self._stopping.wait(POLL_SECONDS):
            ticks += 1
            if ticks % int(60 / POLL_SECONDS) == 0:
                self._every_minute()
            if self._hangup:
                self._hangup = False
                seen = pending = _signature(self._path)
                self._notify("SIGHUP")
                continue
            current = _signature(self._path)
            if current != seen and current == pending:  # changed, and settled since
                seen = current
                self._notify("file changed")
            pending = current

    def _notify(self, reason: str) -> None:
        """Call back; a failure there (the database away mid-reload) is logged, and the next
        change or SIGHUP tries again: the watch itself never stops."""
        try:
            self._on_change(reason)
        except Exception:
            log.exception("config_reload_failed", reason=reason)


def _signature(path: Path) -> Signature:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)
