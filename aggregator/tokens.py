"""Signed links for readers: confirm a subscription, manage or leave it, and the forms' CSRF.

A token names a subscriber by row number, says what it is for, and carries the time it was
made, all signed with HMAC (itsdangerous) under one key: `AGGREGATOR_SECRET_KEY`, or one made
once and kept in the database. Changing a byte, using a token for another purpose, or using it
after its lifetime gives `BadToken`, which the page shows as a 400 saying which it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

Purpose = Literal["confirm", "manage", "form"]
SECRET_KEY_ENV = "AGGREGATOR_SECRET_KEY"
LIFETIMES: Mapping[Purpose, timedelta] = {
    "confirm": timedelta(days=2),  # the confirmation email's link
    "manage": timedelta(days=400),  # the links in a digest: working for as long as mail is kept
    "form": timedelta(hours=2),  # a page's form, filled in and posted
}


class BadToken(Exception):
    """A link or form that is not ours, not for this, or too old."""

    def __init__(self, expired: bool) -> None:
        self.expired = expired
        super().__init__("expired" if expired else "not valid")


class Tokens:
    """Makes and reads tokens under one key."""

    def __init__(self, key: str, clock: Callable[[], float] = time.time) -> None:
        class _Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializers = {
            purpose: URLSafeTimedSerializer(key, salt=f"aggregator.{purpose}", signer=_Signer)
            for purpose in LIFETIMES
        }

    def make(self, purpose: Purpose, value: int | str) -> str:
        return self._serializers[purpose].dumps(value)

    def read(self, purpose: Purpose, token: str) -> int | str:
        """The value `make` signed; BadToken if it was changed, made for another purpose or
        has outlived its purpose's lifetime."""
        try:
            value = self._serializers[purpose].loads(
                token, max_age=int(LIFETIMES[purpose].total_seconds())
            )
        except SignatureExpired as error:
            raise BadToken(expired=True) from error
        except BadSignature as error:
            raise BadToken(expired=False) from error
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise BadToken(expired=False)
        return value

    def subscriber(self, purpose: Purpose, token: str) -> int:
        """The subscriber row a confirm or manage token names."""
        value = self.read(purpose, token)
        if not isinstance(value, int):
            raise BadToken(expired=False)
        return value
