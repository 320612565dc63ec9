"""What every page must be for a person in a browser, checked the same way by every test."""

from __future__ import annotations

from typing import Any

from axe_core_python.selenium import Axe


def assert_readable(browser: Any) -> None:
    """Nothing runs off the side of the screen, and axe-core finds no serious or critical
    accessibility fault (contrast, labels, landmarks, names of links and controls)."""
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    results = Axe().run(browser)
    faults = [
        f"{fault['id']}: {fault['help']} ({len(fault['nodes'])} elements)"
        for fault in results["violations"]
        if fault["impact"] in {"serious", "critical"}
    ]
    assert faults == [], browser.current_url
