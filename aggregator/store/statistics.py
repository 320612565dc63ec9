"""Planner statistics for PostgreSQL tables that grow faster than autovacuum looks at them.

PostgreSQL chooses how to run a lookup from statistics that autovacuum gathers, at most once a
minute per database. A first fetch of many feeds fills the empty tables far faster than that,
and until a table has statistics the planner guesses that a lookup of 500 keys matches a tenth
of it, so it reads the whole table for each: a 400-feed first load spent two thirds of its time
scanning `dedupe_keys` so. Analysing a table whenever it has doubled since its statistics were
made keeps lookups on the indexes, and costs a handful of small ANALYZEs over a first load and
next to nothing after it, when tables grow by a few percent a day. SQLite's planner
assumes indexes are selective when it knows nothing, so it needs none of this.
"""

from __future__ import annotations

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.exc import DBAPIError

from aggregator import logs

log = logs.get_logger(__name__)

# The tables a fetch grows, row for row with its items.
GROWING_TABLES = ("items", "dedupe_keys", "story_links", "stories", "matches")
# Below this many rows a full scan costs no more than the index, so statistics can wait.
MIN_ROWS = 1000

_OUTGROWN = text(
    """
    SELECT relname FROM pg_stat_user_tables
    WHERE schemaname = current_schema() AND relname IN :tables AND n_live_tup >= :min_rows
      AND (coalesce(last_analyze, last_autoanalyze) IS NULL
           OR n_mod_since_analyze > n_live_tup / 2)
    ORDER BY relname
    """
).bindparams(bindparam("tables", expanding=True))


def analyse_outgrown_tables(engine: Engine) -> list[str]:
    """ANALYZE the growing tables that have no statistics yet or have doubled since theirs
    were made; returns their names.

    Never raises for the database: the batch that grew them is already committed, and without
    fresh statistics its successors are only slower (a server's `statement_timeout` could
    refuse an ANALYZE every time, and must not make every feed look failed).
    """
    try:
        with engine.connect() as connection:
            outgrown = list(
                connection.scalars(
                    _OUTGROWN, {"tables": list(GROWING_TABLES), "min_rows": MIN_ROWS}
                )
            )
            if not outgrown:
                return []
            # A sample of 300 rows, a hundredth of the default, tells an index from a scan
            # well enough, and costs the waiting store far less; autovacuum refines it later.
            connection.execute(text("SET LOCAL default_statistics_target = 1"))
            for table in outgrown:
                # SKIP_LOCKED: another process analysing it now is as good; never wait for it.
                connection.execute(text(f"ANALYZE (SKIP_LOCKED) {table}"))  # ours, not input
            connection.commit()
            return outgrown
    except DBAPIError as error:
        log.warning("tables_not_analysed", error=str(error), effect="lookups may be slow")
        return []
