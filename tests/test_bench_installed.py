"""The farm bench measures `aggregator fetch --all` with only what installing the service brings,
so a test machine's extra packages (selenium's trio, which httpcore imports when present) do
not count as the service's memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.installed import as_installed, service_distributions


def _imports(module: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, env=environ
    )


def test_an_install_brings_the_libraries_and_database_driver_not_the_test_tools() -> None:
    distributions = service_distributions()
    assert {"httpx", "httpcore", "sqlalchemy", "feedparser", "psycopg"} <= distributions
    assert "pytest" not in distributions
    assert "selenium" not in distributions


def test_a_measured_command_cannot_import_what_only_the_tests_installed(tmp_path: Path) -> None:
    environ = as_installed(tmp_path)
    hidden = _imports("pytest", environ)
    assert hidden.returncode != 0
    assert "No module named 'pytest'" in hidden.stderr
    assert _imports("httpx, sqlalchemy, aggregator.cli", environ).returncode == 0
