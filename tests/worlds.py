"""Worlds of sources the tests serve in their real shapes (journals, literature databases, a
trial registry, dated news), and reading back what the pipeline made of them."""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from conftest import FEEDS_DIR, CliRunnerFunction, ConfigFactory
from feed_server import FeedServer
from samples import TOPIC_RULES

OUTPUT = '[output]\nbase_url = "https://news.example.org/"\n'


def listed(run_cli: CliRunnerFunction, config: Path) -> list[dict[str, Any]]:
    result = run_cli(config, "stories", "list", "--all", "--json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def literature_config(
    make_config: ConfigFactory,
    database_url: str,
    feed_server: FeedServer,
    extra: str = "",
    *,
    output: str = "",
) -> Path:
    """Journal feeds and literature databases that carry some of the same papers; `output`
    adds settings to the [output] table, `extra` more tables."""
    feeds = [
        ("nature", "real/nature-ms.rdf", "rss"),
        ("medrxiv", "real/medrxiv-neurology.rdf", "rss"),
        ("sage", "real/sage-msj-toc.xml", "rss"),
        ("pubmed", "real/literature/entrez/eutils/esearch.fcgi?db=pubmed&term=car-t", "pubmed"),
        (
            "europepmc",
            "real/literature/europepmc/webservices/rest/search?query=car-t",
            "europepmc",
        ),
    ]
    tables = "".join(
        f'[[feeds]]\nname = "{name}"\nurl = "{feed_server.url(path)}"\ntype = "{kind}"\n\n'
        for name, path, kind in feeds
    )
    return make_config(
        database_url,
        fetch='timeout = "5s"\ncontact_email = "operator@example.org"',
        extra=OUTPUT + output + tables + extra + TOPIC_RULES,
    )


KYSA7 = "KYV-101, a Fully Human Anti-CD19 CAR T-cell Therapy, in Refractory Progressive Multiple "
KYSA7 += "Sclerosis (KYSA-7)"


def serve_kysa7(feed_server: FeedServer, site: str, version: str) -> str:
    """Serve KYSA-7 as the registry published it in `version` ("recruiting" in August,
    "active" in November) from one ClinicalTrials.gov query; returns the query's URL."""
    page = feed_server.root / site / "api/clinicaltrials/page-first.json"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text((FEEDS_DIR / f"real/clinicaltrials/kysa7-{version}.json").read_text())
    return feed_server.url(f"{site}/api/v2/studies?query.cond=multiple+sclerosis")


def dated_feed(feed_server: FeedServer, name: str, items: list[tuple[str, datetime | None]]) -> str:
    """An RSS 2.0 feed of `items` (title, publication date or None), in the given order."""
    entries = "".join(
        f"<item><title>{title}</title><link>https://{name}.example/{zlib.crc32(title.encode())}"
        f'</link><guid isPermaLink="false">{title}</guid><description>{title}.</description>'
        + (f"<pubDate>{format_datetime(published)}</pubDate>" if published else "")
        + "</item>"
        for title, published in items
    )
    (feed_server.root / f"{name}.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>https://{name}.example/</link><description>d</description>{entries}"
        "</channel></rss>",
        encoding="utf-8",
    )
    return feed_server.url(f"{name}.xml")
