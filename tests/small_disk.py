"""A disk that really fills up: a tmpfs whose size a test sets and changes.

Mounting needs root (CI runs as root). The mount point sits directly under the system temp
folder with mode 0777, so PostgreSQL's server, running as the `postgres` user, can keep a
tablespace there.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path


class SmallDiskUnavailable(Exception):
    """This process may not mount file systems."""


class SmallDisk:
    """A tmpfs mounted at `path` until `remove()`."""

    def __init__(self, size_bytes: int) -> None:
        if os.geteuid() != 0:
            raise SmallDiskUnavailable("mounting a small tmpfs needs root")
        self.path = Path(tempfile.mkdtemp(prefix="aggregator-disk-"))
        _mount("-t", "tmpfs", "-o", f"size={size_bytes},mode=0777", "tmpfs", str(self.path))

    def used_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return (stats.f_blocks - stats.f_bfree) * stats.f_frsize

    def resize(self, size_bytes: int) -> None:
        """Grow or shrink the disk (never below what its files already use)."""
        _mount("-o", f"remount,size={size_bytes}", str(self.path))

    def leave_free(self, free_bytes: int) -> None:
        """Shrink the disk to what is used now plus `free_bytes`."""
        self.resize(self.used_bytes() + free_bytes)

    def remove(self) -> None:
        _mount("-l", str(self.path), command="umount")
        self.path.rmdir()


def _mount(*args: str, command: str = "mount") -> None:
    subprocess.run([command, *args], check=True, capture_output=True)
