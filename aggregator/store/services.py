"""Which service processes run, and with which config: what lets `feeds add` tell the
operator whether the change will be applied now or at the next start.

Each `aggregator run` writes a row to `meta` (`service:HOST:PID`) when it starts and again
every minute, and deletes it when it stops; a row not refreshed for a few minutes is a process
that died without saying so.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, select

from aggregator.store.meta import put_meta
from aggregator.store.schema import Meta
from aggregator.store.sessions import Sessions

PREFIX = "service:"
STALE_AFTER = timedelta(minutes=3)


class ServiceRegistry:
    def __init__(self, engine: Engine) -> None:
        self._db = Sessions(engine)

    def announce(self, owner: str, config: Path, now: datetime) -> None:
        """Say that `owner` runs with `config`, as of `now`."""
        value = json.dumps({"config": str(config.resolve()), "seen": now.isoformat()})
        with self._db.transaction() as session:
            put_meta(session, PREFIX + owner, value)

    def forget(self, owner: str) -> None:
        with self._db.transaction() as session:
            session.execute(delete(Meta).where(Meta.key == PREFIX + owner))

    def running(self, config: Path, now: datetime) -> list[str]:
        """The processes that run with `config` and said so within STALE_AFTER."""
        wanted = str(config.resolve())
        with self._db.reading() as session:
            rows = session.execute(select(Meta.key, Meta.value).where(Meta.key.startswith(PREFIX)))
            found = []
            for key, value in rows:
                entry = json.loads(value)
                seen = datetime.fromisoformat(entry["seen"])
                if entry["config"] == wanted and now - seen < STALE_AFTER:
                    found.append(key.removeprefix(PREFIX))
            return sorted(found)
