"""The one Jinja2 environment for everything readers see: the page and the digest.

Autoescaping is on for every HTML template (feed text is untrusted) and off for the digest's
plain-text part, which is not HTML; the helpers templates share are defined once here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from aggregator.models import SOURCE_KIND_LABELS, StoryRow
from aggregator.publish.feeds import source_kinds
from aggregator.publish.why import Why, search_marks, why_shown


@cache
def environment() -> Environment:
    """The shared environment, made once per process."""
    env = Environment(
        loader=PackageLoader("aggregator.publish", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["day"] = day
    env.globals["why"] = why
    env.globals["kinds"] = kinds
    env.globals["kind_label"] = kind_label
    env.globals["marked"] = marked
    return env


def day(moment: datetime, timezone: str = "UTC") -> str:
    """A date as readers write it: "2 Dec 2026"."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%-d %b %Y}"


def why(story: StoryRow) -> list[Why]:
    """Why a story is shown: the sentences that made it match, for lines under it."""
    return why_shown(story.matches)


def kinds(story: StoryRow) -> list[str]:
    """The badges of the kinds of source that carried a story."""
    return [SOURCE_KIND_LABELS[kind] for kind in source_kinds(story)]


def kind_label(kind: str) -> str:
    """The badge of one kind of source ("registry" -> "Trial registry")."""
    return SOURCE_KIND_LABELS.get(kind, kind)


def marked(text: str, words: Sequence[str]) -> Markup:
    """`text`, escaped, with the words a search found in it marked."""
    return Markup("").join(
        Markup("<mark>{}</mark>").format(segment.text) if segment.matched else segment.text
        for segment in search_marks(text, words)
    )
