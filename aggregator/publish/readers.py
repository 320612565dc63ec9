"""Who gets a digest now: the config's readers, unless they paused or left through a link in
a digest, and the active readers who subscribed on the page or whom the operator added."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aggregator.config import Settings, Subscriber
from aggregator.store.subscribers import ACTIVE, FROM_CONFIG, Subscriptions, address_hash
from aggregator.tokens import SECRET_KEY_ENV, Tokens

FREQUENCIES = ("weekly", "daily")


def digest_readers(settings: Settings, subscriptions: Subscriptions) -> list[Subscriber]:
    """Every reader to send to, each as the digest code works from them."""
    configured = subscriptions.config_records()
    readers = []
    for reader in settings.all_subscribers:
        record = configured.get(address_hash(reader.email))
        if record is None:  # not synced yet: the config is the whole truth
            readers.append(reader)
        elif record.state == ACTIVE:
            readers.append(replace(reader, id=record.id))
    every_topic = tuple(topic.id for topic in settings.topics)
    for record in subscriptions.current():
        if record.source == FROM_CONFIG or record.email is None:
            continue
        topics = tuple(topic for topic in record.topics if topic in every_topic)
        readers.append(
            Subscriber(
                email=record.email,
                topics=topics or every_topic,
                schedule=schedule_of(settings, record.frequency),
                timezone=record.timezone,
                send_empty=False,
                id=record.id,
                due_from=record.due_from,
                from_config=False,
            )
        )
    return readers


def schedule_of(settings: Settings, frequency: str) -> str:
    """The cron schedule of a frequency a reader chose on the page."""
    digest = settings.digest
    return digest.daily_schedule if frequency == "daily" else digest.schedule


def signing_tokens(subscriptions: Subscriptions, environ: Mapping[str, str]) -> Tokens:
    """Tokens under AGGREGATOR_SECRET_KEY, or else the key the database keeps."""
    return Tokens(environ.get(SECRET_KEY_ENV) or subscriptions.secret_key())
