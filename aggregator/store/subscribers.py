"""Subscribers in the store: readers who subscribed on the page or were added by the operator,
and the state of readers the config lists.

Each method is one transaction. The rules that must hold across processes are conditional
updates the database decides: only one confirmation email per address an hour, however many
forms are posted at once; an address is known by its hash, which outlives it, so a reader who
left is never mailed again without consenting anew.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import SMTP

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aggregator.errors import AggregatorError
from aggregator.models import reader_key
from aggregator.store.outbox import SENT
from aggregator.store.schema import Digest, Meta, Subscription
from aggregator.store.sessions import Sessions

PENDING = "pending"
ACTIVE = "active"
PAUSED = "paused"
UNSUBSCRIBED = "unsubscribed"
READING = (ACTIVE, PAUSED)  # the states of a current reader, whose links still work
FROM_PAGE, FROM_OPERATOR, FROM_CONFIG = "page", "operator", "config"

CONFIRMATION_QUIET = timedelta(hours=1)  # no second confirmation email to an address within it
CONFIRMATION_LIFETIME = timedelta(days=2)  # an unconfirmed address is forgotten after it
SECRET_KEY = "secret_key"
UNDISCLOSED = "undisclosed-recipients:;"


class SubscriberError(AggregatorError):
    """The operator asked for something the subscriber's state does not allow."""


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    id: int
    email: str | None
    source: str
    topics: tuple[str, ...]
    frequency: str
    timezone: str
    state: str
    created_at: datetime
    confirmed_at: datetime | None
    due_from: datetime | None


@dataclass(frozen=True, slots=True)
class Choice:
    """What a reader chose: their topics (none means all), how often, in which time zone."""

    topics: tuple[str, ...]
    frequency: str
    timezone: str


def address_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class Subscriptions:
    """Subscriber rows on one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._db = Sessions(engine)

    def secret_key(self) -> str:
        """The key that signs links when AGGREGATOR_SECRET_KEY is unset: made once, by whichever
        process asks first, and the same for every process after."""
        with self._db.reading() as session:
            key = session.get(Meta, SECRET_KEY)
            if key is not None:
                return key.value
        try:
            with self._db.transaction() as session:
                session.add(Meta(key=SECRET_KEY, value=secrets.token_urlsafe(32)))
        except IntegrityError:
            pass  # another process made it first; theirs is the key
        return self.secret_key()

    def request(self, email: str, choice: Choice, now: datetime) -> int | None:
        """Record a subscription asked for on the page. The row to send a confirmation to, or
        None when nothing may be sent: the address already reads the digest, or was sent a
        confirmation within the hour."""
        digest = address_hash(email)
        values = {
            "email": email,
            "topics": list(choice.topics),
            "frequency": choice.frequency,
            "timezone": choice.timezone,
        }
        try:
            with self._db.transaction() as session:
                _forget_unconfirmed(session, now)
                row = session.scalar(select(Subscription).where(Subscription.email_hash == digest))
                if row is None:
                    return session.scalar(
                        insert(Subscription)
                        .values(
                            email_hash=digest,
                            source=FROM_PAGE,
                            state=PENDING,
                            created_at=now,
                            confirmation_sent_at=now,
                            **values,
                        )
                        .returning(Subscription.id)
                    )
                if row.source == FROM_CONFIG or row.state in READING:
                    return None
                return session.scalar(
                    update(Subscription)
                    .where(
                        Subscription.id == row.id,
                        or_(
                            Subscription.confirmation_sent_at.is_(None),
                            Subscription.confirmation_sent_at <= now - CONFIRMATION_QUIET,
                        ),
                    )
                    .values(state=PENDING, source=FROM_PAGE, confirmation_sent_at=now, **values)
                    .returning(Subscription.id)
                )
        except IntegrityError:
            return None  # the same address posted at the same moment: that one sends

    def confirm(self, subscriber_id: int, now: datetime) -> SubscriberRecord | None:
        """Make a pending subscription active (again: a second click changes nothing); None if
        there is nothing to confirm, because it expired or the reader left since."""
        with self._db.transaction() as session:
            session.execute(
                update(Subscription)
                .where(Subscription.id == subscriber_id, Subscription.state == PENDING)
                .values(state=ACTIVE, confirmed_at=now, due_from=now)
            )
            row = session.get(Subscription, subscriber_id)
            if row is None or row.state not in READING:
                return None
            return _record(row)

    def get(self, subscriber_id: int) -> SubscriberRecord | None:
        """A current reader (active or paused); None for anyone else."""
        with self._db.reading() as session:
            row = session.get(Subscription, subscriber_id)
            return _record(row) if row is not None and row.state in READING else None

    def change(
        self, subscriber_id: int, choice: Choice | None, paused: bool, now: datetime
    ) -> SubscriberRecord | None:
        """A reader's new choices (None keeps them: the config's readers have theirs there).
        A new frequency or time zone starts counting from now, so it never sends a digest for a
        run that passed before the change."""
        with self._db.transaction() as session:
            row = session.get(Subscription, subscriber_id)
            if row is None or row.state not in READING:
                return None
            if choice is not None:
                if (row.frequency, row.timezone) != (choice.frequency, choice.timezone):
                    row.due_from = now
                row.topics = list(choice.topics)
                row.frequency, row.timezone = choice.frequency, choice.timezone
            if row.state == PAUSED and not paused:
                row.due_from = now
            row.state = PAUSED if paused else ACTIVE
            return _record(row)

    def unsubscribe(self, subscriber_id: int) -> bool:
        """Stop every digest to the reader at once and forget their address (the config keeps
        its own readers' addresses): only the hash stays. Their unsent digests are dropped and
        the address is taken off the copies of sent ones. False if there was nobody to remove."""
        with self._db.transaction() as session:
            row = session.get(Subscription, subscriber_id)
            if row is None or row.state == UNSUBSCRIBED:
                return False
            row.state = UNSUBSCRIBED
            if row.source == FROM_CONFIG:
                return True
            row.email, row.topics = None, []
            key = reader_key(row.id)
            session.execute(delete(Digest).where(Digest.subscriber == key, Digest.status != SENT))
            for digest in session.scalars(select(Digest).where(Digest.subscriber == key)):
                digest.message = _without_recipient(digest.message)
            return True

    def add(self, email: str, choice: Choice, now: datetime) -> SubscriberRecord:
        """A reader the operator adds, active at once; never one who unsubscribed, whose
        consent only they can give again (on the page)."""
        digest = address_hash(email)
        with self._db.transaction() as session:
            row = session.scalar(select(Subscription).where(Subscription.email_hash == digest))
            if row is not None and row.state == UNSUBSCRIBED:
                raise SubscriberError(
                    f"{email} unsubscribed; only they can subscribe again, on the page"
                )
            if row is not None and row.state != PENDING:
                raise SubscriberError(f"{email} is already a subscriber")
            if row is None:
                row = Subscription(email_hash=digest, created_at=now)
                session.add(row)
            row.email, row.source, row.state = email, FROM_OPERATOR, ACTIVE
            row.topics = list(choice.topics)
            row.frequency, row.timezone = choice.frequency, choice.timezone
            row.confirmed_at = row.due_from = now
            session.flush()
            return _record(row)

    def find(self, email: str) -> SubscriberRecord | None:
        """The row of `email`, whatever its state."""
        with self._db.reading() as session:
            row = session.scalar(
                select(Subscription).where(Subscription.email_hash == address_hash(email))
            )
            return _record(row) if row is not None else None

    def listed(self) -> list[SubscriberRecord]:
        """Every row that still has an address, oldest first."""
        with self._db.reading() as session:
            rows = session.scalars(
                select(Subscription)
                .where(Subscription.email.is_not(None))
                .order_by(Subscription.id)
            )
            return [_record(row) for row in rows]

    def config_records(self) -> dict[str, SubscriberRecord]:
        """The rows of the config's readers, whatever their state, by address hash."""
        with self._db.reading() as session:
            rows = session.scalars(select(Subscription).where(Subscription.source == FROM_CONFIG))
            return {row.email_hash: _record(row) for row in rows}

    def current(self) -> list[SubscriberRecord]:
        """Readers whose digests go out: active ones, from the page, the operator or the config."""
        with self._db.reading() as session:
            rows = session.scalars(
                select(Subscription)
                .where(Subscription.state == ACTIVE, Subscription.email.is_not(None))
                .order_by(Subscription.id)
            )
            return [_record(row) for row in rows]

    def sync_config(self, emails: Sequence[str], now: datetime) -> None:
        """Give every reader the config lists a row (for the links in their digests), keeping
        the state they chose; forget rows of readers it no longer lists, unless they left."""
        try:
            self._sync_config(emails, now)
        except IntegrityError:  # another process gave a new reader their row a moment ago
            self._sync_config(emails, now)

    def _sync_config(self, emails: Sequence[str], now: datetime) -> None:
        wanted = {address_hash(email): email for email in emails}
        with self._db.transaction() as session:
            rows = {
                row.email_hash: row
                for row in session.scalars(
                    select(Subscription).where(
                        or_(
                            Subscription.source == FROM_CONFIG,
                            Subscription.email_hash.in_(wanted),
                        )
                    )
                )
            }
            for digest, email in wanted.items():
                row = rows.get(digest)
                if row is None:
                    session.add(_config_row(email, digest, now))
                elif row.source != FROM_CONFIG:
                    # Listed by the operator now: the config's rules apply, the choice stays.
                    row.source, row.email = FROM_CONFIG, email
                    if row.state == PENDING:
                        row.state, row.confirmed_at, row.due_from = ACTIVE, now, now
            for digest, row in rows.items():
                if digest not in wanted and row.state != UNSUBSCRIBED:
                    session.delete(row)


def _forget_unconfirmed(session: Session, now: datetime) -> None:
    """Addresses nobody confirmed within the link's lifetime: gone, or back to the hash
    only for a reader who had left before."""
    expired = [
        Subscription.state == PENDING,
        Subscription.confirmation_sent_at < now - CONFIRMATION_LIFETIME,
    ]
    session.execute(delete(Subscription).where(*expired, Subscription.confirmed_at.is_(None)))
    session.execute(
        update(Subscription).where(*expired).values(state=UNSUBSCRIBED, email=None, topics=[])
    )


def _config_row(email: str, digest: str, now: datetime) -> Subscription:
    return Subscription(
        email=email,
        email_hash=digest,
        source=FROM_CONFIG,
        topics=[],
        frequency="config",
        timezone="config",
        state=ACTIVE,
        created_at=now,
        confirmed_at=now,
        due_from=None,  # the config's readers follow its schedule from any time
    )


def _record(row: Subscription) -> SubscriberRecord:
    return SubscriberRecord(
        id=row.id,
        email=row.email,
        source=row.source,
        topics=tuple(row.topics),
        frequency=row.frequency,
        timezone=row.timezone,
        state=row.state,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        due_from=row.due_from,
    )


def _without_recipient(message: str) -> str:
    """A stored digest with its To header replaced: what is kept of a reader who left."""
    parsed = message_from_bytes(message.encode("ascii"), policy=SMTP)
    parsed.replace_header("To", UNDISCLOSED)
    return parsed.as_bytes().decode("ascii")
