"""Commands measured as an install runs them: with only the packages that installing the service
(`pip install aggregator[postgres]`) brings, not those the test and bench extras add here.

Some libraries import a package only when it is present: httpcore imports trio, which selenium
brings for the browser tests, and lxml imports rnc2rng, which the feed-validity tests use. On
this machine they added 6-7 MB to `aggregator fetch --all`, memory no installed service holds.
The measured process is started with a `sitecustomize` that makes every other installed package
unimportable, as it would be on a server; the parse workers it spawns inherit it.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SERVICE = "aggregator"
SERVICE_EXTRAS = frozenset({"postgres"})  # the database driver the bench may run against

_SITECUSTOMIZE = '''"""Written by bench/installed.py: hides what an install of the service lacks."""
import sys

NOT_INSTALLED = frozenset({names!r})


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in NOT_INSTALLED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
'''


def service_distributions() -> set[str]:
    """The distributions installing the service brings: its requirements, theirs, and so on,
    each with the extras asked of it and the markers evaluated for this interpreter."""
    found: set[str] = set()
    wanted = [(SERVICE, SERVICE_EXTRAS)]
    while wanted:
        name, extras = wanted.pop()
        name = canonicalize_name(name)
        if name in found:
            continue
        found.add(name)
        for line in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                wanted.append((requirement.name, frozenset(requirement.extras)))
    return found


def modules_not_installed() -> list[str]:
    """Top-level modules of this environment that no distribution of the service provides."""
    service = service_distributions()
    return sorted(
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in service for d in distributions)
    )


def as_installed(folder: Path) -> dict[str, str]:
    """This process's environment, plus a PYTHONPATH whose `sitecustomize` (written into
    `folder`) hides every module the service's install would not have."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(names=modules_not_installed()))
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}
