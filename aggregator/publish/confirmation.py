"""The email that asks a new reader to confirm: plain text, one link, nothing else.

Nothing is sent to an address but this until its owner confirms (double opt-in); what it says
names no other reader and holds no feed text, only the choice made on the form.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr

from aggregator.publish.templates import environment
from aggregator.tokens import LIFETIMES

FREQUENCY_WORDS = {"daily": "every day", "weekly": "once a week"}


def confirmation_message(
    *,
    title: str,
    sender: str,
    recipient: str,
    confirm_url: str,
    topics: Sequence[str],
    frequency: str,
    now: datetime,
) -> bytes:
    """The confirmation email for `recipient`, ready for the mailer."""
    body = (
        environment()
        .get_template("confirm_email.txt")
        .render(
            title=title,
            topics=topics,
            frequency=FREQUENCY_WORDS.get(frequency, frequency),
            confirm_url=confirm_url,
            lifetime_days=LIFETIMES["confirm"].days,
        )
    )
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"Confirm your subscription to {title}"
    message["Date"] = format_datetime(now)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid("confirm", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, cte="quoted-printable")
    return message.as_bytes()
