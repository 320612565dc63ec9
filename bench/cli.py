"""How soon the command answers: `aggregator --help` and two everyday commands on a database
of 10,000 stories, beside two floors: what any click program pays (starting Python, importing
click), and what a listing command pays before our code runs (importing click, rich's
tables, SQLAlchemy's ORM and pydantic). Alternating runs, a fresh process each, as an
operator runs them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from aggregator.store.schema import Story
from bench.farm import Farm, Service, verdict

TARGET_HELP_SECONDS = 0.2
TARGET_LIST_SECONDS = 0.4  # `feeds list` and `stories list`, 10,000 stories
FLOOR = "python -c 'import click' (floor)"
# What `feeds list` and `stories list` import before our code: the table printer, the
# store's and the config's libraries (structlog only when a line is logged).
LIBRARY_IMPORTS = "import click, rich.table, sqlalchemy.orm, pydantic"
LIBRARIES = f"python -c '{LIBRARY_IMPORTS}'"
# 250 feeds x 50 items, a fifth of the stories carried by several feeds: about 10,000 stories.
FEEDS, PER_FEED = 250, 50


def run(runs: int = 5) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        config, stories = _database_with_stories(Path(folder))
        command = [sys.executable, "-m", "aggregator", "--config", str(config)]
        cases = {
            FLOOR: [sys.executable, "-c", "import click"],
            LIBRARIES: [sys.executable, "-c", LIBRARY_IMPORTS],
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
    floor = medians[FLOOR]
    width = max(len(name) for name in medians) + 2
    lines = [
        f"cli: a fresh process per command, {stories:,} stories of {FEEDS} feeds (SQLite),"
        f" median of {runs} alternating runs",
        "",
        f"{'command':<{width}}{'seconds':>9}{'vs floor':>10}",
    ]
    for name, median in medians.items():
        lines.append(f"{name:<{width}}{median:>9.3f}{median / floor:>9.1f}x")
    lists = max(medians["aggregator feeds list"], medians["aggregator stories list"])
    return [
        *lines,
        "",
        "target: "
        + verdict(
            f"--help under {TARGET_HELP_SECONDS} s",
            medians["aggregator --help"] < TARGET_HELP_SECONDS,
        ),
        "target: "
        + verdict(
            f"feeds list and stories list under {TARGET_LIST_SECONDS} s",
            lists < TARGET_LIST_SECONDS,
        )
        + f" (the store's libraries alone take {medians[LIBRARIES]:.3f} s)",
    ]


def _database_with_stories(folder: Path) -> tuple[Path, int]:
    """A SQLite database filled by a cold ingest of a feed farm; its config, and its stories."""
    farm = Farm(FEEDS, PER_FEED)
    try:
        service = Service(farm, None, folder)
        service.fetch_all()
    finally:
        farm.stop()
    with service.engine.connect() as connection:
        stories = connection.scalar(select(func.count()).select_from(Story)) or 0
    service.engine.dispose()
    return service.config, stories
