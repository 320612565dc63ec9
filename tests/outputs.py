"""Checks that an output feed is what its format requires, shared by the tests that publish."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import feedparser
import rnc2rng
from lxml import etree

DATA_DIR = Path(__file__).parent / "data"


@cache
def atom_schema() -> etree.RelaxNG:
    """RFC 4287's grammar, from its compact syntax. rnc2rng declares the empty `local`
    namespace as xmlns:local="", which XML forbids; the schema needs no declaration for it."""
    compact = (DATA_DIR / "atom.rnc").read_text()
    grammar = rnc2rng.dumps(rnc2rng.loads(compact)).replace('xmlns:local=""', "")
    return etree.RelaxNG(etree.fromstring(grammar.encode()))


def assert_valid_outputs(public: Path) -> None:
    """Every exported feed parses: Atom against RFC 4287, RSS without feedparser's complaints,
    JSON Feed with its required fields, and all three list the same stories."""
    schema = atom_schema()
    atom = etree.parse(str(public / "atom.xml"))
    assert schema.validate(atom), schema.error_log.last_error
    rss = feedparser.parse((public / "feed.xml").read_bytes())
    assert not rss.bozo, rss.get("bozo_exception")
    assert all(entry.get("title") for entry in rss.entries)
    document = json.loads((public / "feed.json").read_text(encoding="utf-8"))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert all(item.get("id") and item.get("title") for item in document["items"])
    ids = {
        entry.find("{http://www.w3.org/2005/Atom}id").text
        for entry in atom.getroot().iter("{http://www.w3.org/2005/Atom}entry")
    }
    assert ids == {item["id"] for item in document["items"]} == {e.id for e in rss.entries}
