"""How soon the command answers: `aggregator --help` and two everyday commands, beside the
floor any click program pays (starting Python and importing click), alternating runs.

Each command is a fresh process, as an operator runs it; the database is a fresh SQLite one
with the shipped config's feeds (a command's own work there is small: what is measured is
starting and importing).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = Path(__file__).parent.parent / "config.toml"
TARGET_HELP_SECONDS = 0.2
FLOOR = [sys.executable, "-c", "import click"]


def run(runs: int = 5) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text(
            CONFIG.read_text(encoding="utf-8").replace(
                'url = "sqlite:///aggregator.db"', f'url = "sqlite:///{folder}/bench.db"'
            ),
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "aggregator", "--config", str(config)]
        subprocess.run([*command, "init"], check=True, capture_output=True)
        cases = {
            "python -c 'import click' (floor)": FLOOR,
            "aggregator --help": [*command, "--help"],
            "aggregator feeds list": [*command, "feeds", "list"],
            "aggregator stories list": [*command, "stories", "list"],
        }
        seconds: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(runs):  # alternating: each round runs every case once
            for name, argv in cases.items():
                started = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True)
                seconds[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    floor = medians["python -c 'import click' (floor)"]
    lines = [
        f"cli: a fresh process per command, median of {runs} alternating runs",
        "",
        f"{'command':<36}{'seconds':>9}{'vs floor':>10}",
    ]
    for name, median in medians.items():
        lines.append(f"{name:<36}{median:>9.3f}{median / floor:>9.1f}x")
    help_seconds = medians["aggregator --help"]
    verdict = "met" if help_seconds < TARGET_HELP_SECONDS else "NOT MET"
    lines += ["", f"target: --help under {TARGET_HELP_SECONDS} s: {verdict}"]
    return lines
