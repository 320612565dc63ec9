"""The shipped systemd unit works as shipped: systemd's own checker accepts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "deploy" / "aggregator.service"
INSTALLED = "/opt/aggregator/.venv/bin/aggregator"


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    checker = shutil.which("systemd-analyze")
    if checker is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is needed (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")
    # The unit names where the README installs the command; here it is this checkout's.
    command = Path(sys.executable).with_name("aggregator")
    unit = tmp_path / "aggregator.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED, str(command)))
    checked = subprocess.run(
        [checker, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == "", checked.stderr  # no warnings either
    text = UNIT.read_text(encoding="utf-8")
    for directive in ("ExecReload=", "StateDirectory=", "WorkingDirectory=", "LimitNOFILE="):
        assert directive in text
