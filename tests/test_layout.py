"""The house's rules that a change could quietly break: which modules pull in what."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["aggregator.publish.feeds", "aggregator.publish.digest"])
def test_renderers_load_neither_the_store_nor_the_matcher(module: str) -> None:
    """Renderers work from `models` values: importing one must not load SQLAlchemy's ORM, the
    store or the matcher's automaton (they cost start-up time and tie pure code to I/O)."""
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert module in loaded
    unwanted = [
        name
        for name in loaded
        if name.startswith(
            ("sqlalchemy.orm", "aggregator.store", "ahocorasick", "aggregator.match")
        )
    ]
    assert unwanted == []
