"""Changes to [[feeds]] in config.toml, made the way a person would make them.

config.toml stays the one place feeds are declared; `feeds add`, `remove` and `import-opml` edit
it with tomlkit, which keeps the operator's comments and layout. The edited text is validated
before it replaces the file, and the file is replaced atomically, so a bad edit never leaves a
broken or half-written config behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Item, Table

from aggregator.config import Settings, parse_settings
from aggregator.errors import ConfigError
from aggregator.files import write_atomically


def add_feeds(path: Path, feeds: Sequence[Mapping[str, Any]]) -> Settings:
    """Append feed tables (name, url, and any other feed keys) to the config at `path`."""
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    if "feeds" not in document:
        document["feeds"] = tomlkit.aot()
    array = document["feeds"]
    if not isinstance(array, AoT):
        raise ConfigError("feeds: expected [[feeds]] tables", path=str(path))
    # Comments after the last feed's keys introduce what follows it in the file (the topics):
    # new feeds go before them, each after a blank line, as a person would add them.
    trailing = _detach_trailing_comments(array[-1]) if len(array) else []
    for feed in feeds:
        if len(array):
            array[-1].add(tomlkit.nl())
        table = tomlkit.table()
        for key, value in feed.items():
            table[key] = list(value) if isinstance(value, tuple) else value
        array.append(table)
    array[-1].value.body.extend(trailing)
    return _replace_validated(path, tomlkit.dumps(document))


def _detach_trailing_comments(table: Table) -> list[tuple[None, Item]]:
    """Remove and return the comments and blank lines after `table`'s last key."""
    body = table.value.body
    end = max((index + 1 for index, (key, _) in enumerate(body) if key is not None), default=0)
    trailing = [(None, item) for _, item in body[end:]]
    del body[end:]
    return trailing


def remove_feed(path: Path, name: str) -> Settings:
    """Delete the [[feeds]] table called `name`; its stored items are kept."""
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    array = document.get("feeds")
    kept = [table for table in array or [] if table.get("name") != name]
    if array is None or len(kept) == len(array):
        raise ConfigError(f"no feed named {name!r}", path=str(path))
    array.clear()
    array.extend(kept)
    return _replace_validated(path, tomlkit.dumps(document))


def _replace_validated(path: Path, text: str) -> Settings:
    settings = parse_settings(text, path)
    write_atomically(path, text.encode("utf-8"))
    return settings
