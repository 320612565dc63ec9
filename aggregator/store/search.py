"""Full-text search over stored items, meaning the same on SQLite and PostgreSQL.

Each item's words are folded by the application (`normalise.search_words`: lower case, no
accents, no punctuation) together with its identifiers and its source's name into
`items.search_text`; both databases only split that on spaces (FTS5's unicode61, PostgreSQL's
'simple' configuration: no stemming, no stop words, no operators). A query is folded the same
way and every word of it must be there, a word of three letters or more also as the start of a
longer one ("trial" finds "trials"). Nothing a reader types is query syntax on either side.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Float, Integer, Subquery, select, text
from sqlalchemy.orm import Session

from aggregator.normalise import SEARCH_PREFIX_FROM, search_words, text_from_html
from aggregator.store.batches import BATCH_SIZE
from aggregator.store.schema import Feed, Item, feed_title, update_by_id

MAX_QUERY_WORDS = 12
# Written out, not bound: a planner matches a partial index's condition (ix_items_unindexed)
# only against the same literal.
_UNINDEXED = text("items.search_text = ''")
SEARCH_CONTENT_CHARS = 20_000  # of an item's content text, enough for any reader's words

# (item id, score: higher is better) of the items holding every word of :query. FTS5's `rank`
# column is its bm25 (lower is better), and unlike bm25() it may be read from a subquery.
_SQLITE_ITEMS = text(
    "SELECT rowid AS item_id, -rank AS score FROM items_search WHERE items_search MATCH :query"
)
# `search_vector` is search_text's 'simple' tsvector, stored by PostgreSQL when a row is written.
_POSTGRESQL_ITEMS = text(
    "SELECT id AS item_id, ts_rank(search_vector, query) AS score "
    "FROM items, to_tsquery('simple'::regconfig, :query) AS query "
    "WHERE search_vector @@ query"
)


def search_text(
    title: str, summary: str, content_html: str, identifiers: Sequence[str], source: str
) -> str:
    """What the index reads of an item: its words, identifiers and source, folded."""
    content = text_from_html(content_html)[:SEARCH_CONTENT_CHARS] if content_html else ""
    return " ".join(search_words(" ".join([title, summary, content, *identifiers, source])))


def query_words(query: str) -> list[str]:
    """A reader's query as the words searched for (at most MAX_QUERY_WORDS)."""
    return search_words(query)[:MAX_QUERY_WORDS]


def ranked_items(words: Sequence[str], dialect: str) -> Subquery:
    """(item_id, score) of the items holding every one of `words` (at least one); a higher
    score ranks first."""
    if dialect == "sqlite":
        match = " ".join(
            f'"{word}"' + ("*" if len(word) >= SEARCH_PREFIX_FROM else "") for word in words
        )
        items = _SQLITE_ITEMS.bindparams(query=match)
    else:
        match = " & ".join(
            word + (":*" if len(word) >= SEARCH_PREFIX_FROM else "") for word in words
        )
        items = _POSTGRESQL_ITEMS.bindparams(query=match)
    return items.columns(item_id=Integer, score=Float).subquery("ranked")


def fill_search_text(session: Session) -> int:
    """Fill `search_text` of items stored before it existed; returns how many."""
    filled = 0
    while True:
        rows = session.execute(
            select(
                Item.id,
                Item.title,
                Item.summary,
                Item.content_html,
                Item.identifiers,
                Feed.name,
                feed_title(),
            )
            .join(Feed)
            .where(_UNINDEXED)
            .limit(BATCH_SIZE)
        ).all()
        if not rows:
            return filled
        session.execute(
            update_by_id(Item),
            [
                {
                    "row_id": item_id,
                    "search_text": search_text(
                        title, summary, content, identifiers or (), f"{name} {feed_title or ''}"
                    )
                    or "-",  # no words at all: marked filled all the same
                }
                for item_id, title, summary, content, identifiers, name, feed_title in rows
            ],
        )
        filled += len(rows)
