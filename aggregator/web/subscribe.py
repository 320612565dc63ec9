"""The reader's own pages: subscribe, confirm, change preferences, leave.

Double opt-in: the form stores a pending subscription and mails a signed link; only pressing
"Confirm" on that link's page makes it active (mail scanners follow links, so no GET changes
anything; one-click unsubscribe is a POST, as RFC 8058 has mail clients send it). The form
answers the same whatever the address (nobody learns who subscribes), sends at most one
confirmation an hour to an address (a database rule, so it holds across processes), and is
limited per client address. Forms carry a CSRF token bound to a cookie; confirm and unsubscribe
need no cookie, their signed link is the proof. Pages holding a token are never cached and send
no Referer. A reader's address shows on their preferences page only.
"""

from __future__ import annotations

import secrets
import time
import zoneinfo
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from functools import cache, partial
from typing import Any
from urllib.parse import parse_qsl, urljoin

from anyio import CapacityLimiter, to_thread
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aggregator import logs
from aggregator.clock import utc_now
from aggregator.config import EMAIL_ADDRESS, Settings
from aggregator.publish.confirmation import confirmation_message
from aggregator.publish.mailer import DeliveryError, Mailer
from aggregator.publish.readers import FREQUENCIES, schedule_of, signing_tokens
from aggregator.schedule import cron_trigger
from aggregator.store.subscribers import FROM_CONFIG, PAUSED, Choice, Subscriptions
from aggregator.tokens import BadToken, Purpose, Tokens
from aggregator.web.cache import html_response
from aggregator.web.pages import Site

log = logs.get_logger(__name__)

CSRF_COOKIE = "aggregator_form"
MAX_FORM_BYTES = 16 * 1024
POSTS_PER_CLIENT = 10  # subscribe forms one client address may post per window
POST_WINDOW = timedelta(minutes=10)
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True, slots=True)
class Subscribing:
    """What the pages need to take subscriptions: the store, the signer, the mailer."""

    subscriptions: Subscriptions
    tokens: Tokens
    mailer: Mailer


def subscribing(
    settings: Settings, engine: Engine, environ: Mapping[str, str]
) -> Subscribing | None:
    """The pages' means, or None when digests have no sender and so cannot be subscribed to."""
    if settings.digest.sender is None:
        return None
    subscriptions = Subscriptions(engine)
    return Subscribing(
        subscriptions, signing_tokens(subscriptions, environ), Mailer(settings.smtp, environ)
    )


class RateLimit:
    """At most `limit` events per key within `window`, as this process saw them."""

    def __init__(
        self, limit: int, window: timedelta, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window.total_seconds()
        self._clock = clock
        self._events: defaultdict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        now = self._clock()
        events = self._events[key]
        while events and events[0] <= now - self._window:
            events.popleft()
        if len(events) >= self._limit:
            return False
        events.append(now)
        if len(self._events) > 10_000:  # forget clients that went quiet
            for quiet in [
                k for k, e in self._events.items() if not e or e[-1] <= now - self._window
            ]:
                del self._events[quiet]
        return True


def subscription_routes(
    site: Site, settings: Settings, means: Subscribing | None, threads: CapacityLimiter
) -> list[Route]:
    """The routes of the reader's pages; without `means` each says subscriptions are closed."""
    pages = _Pages(site, settings, means, threads)
    return [
        Route("/subscribe", pages.subscribe, methods=["GET", "POST"]),
        Route("/confirm/{token}", pages.confirm, methods=["GET", "POST"]),
        Route("/preferences/{token}", pages.preferences, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", pages.unsubscribe, methods=["GET", "POST"]),
    ]


class _Pages:
    def __init__(
        self, site: Site, settings: Settings, means: Subscribing | None, threads: CapacityLimiter
    ) -> None:
        self._site = site
        self._settings = settings
        self._means = means
        self._threads = threads
        self._per_client = RateLimit(POSTS_PER_CLIENT, POST_WINDOW)
        self._topics = settings.topic_titles

    async def subscribe(self, request: Request) -> Response:
        means = self._means
        if means is None:
            return self._closed()
        cookie = request.cookies.get(CSRF_COOKIE)
        if request.method == "GET":
            return self._form(request, "subscribe.html", means.tokens, cookie, choice=self._default)
        client = request.client.host if request.client else "unknown"
        if not self._per_client.allow(client):
            return self._notice(
                429,
                "Too many requests",
                "This connection has sent the form many times in a few minutes. "
                "Please wait a while and try again.",
            )
        fields = await _form_fields(request)
        if fields is None:
            return self._too_large()
        if not _csrf_ok(means.tokens, cookie, fields):
            return self._form(
                request,
                "subscribe.html",
                means.tokens,
                cookie,
                status=400,
                error=_STALE_FORM,
                choice=self._choice(fields),
                email=_first(fields, "email"),
            )
        email = _first(fields, "email").strip()
        choice = self._choice(fields)
        error = _address_error(email) or self._choice_error(fields)
        if error:
            return self._form(
                request,
                "subscribe.html",
                means.tokens,
                cookie,
                status=400,
                error=error,
                choice=choice,
                email=email,
            )
        subscriber_id = await to_thread.run_sync(
            means.subscriptions.request, email, choice, utc_now(), limiter=self._threads
        )
        task = (
            BackgroundTask(self._send_confirmation, means, subscriber_id, email, choice)
            if subscriber_id is not None
            else None
        )
        page = self._site.page(
            "notice.html",
            heading="Check your inbox",
            message=(
                "If this address does not already receive the digest, a message with a "
                "confirmation link is on its way. Nothing is sent until you confirm. "
                "If it does not arrive, look in your spam folder; you can ask again in an hour."
            ),
        )
        return html_response(page, PRIVATE, background=task)

    async def confirm(self, request: Request) -> Response:
        found = self._named_by_link(request, "confirm")
        if isinstance(found, Response):
            return found
        means, subscriber_id = found
        if request.method == "GET":
            return self._button(
                "Confirm your subscription",
                "Press the button to start receiving the digest.",
                "Confirm",
            )
        record = await to_thread.run_sync(
            means.subscriptions.confirm, subscriber_id, utc_now(), limiter=self._threads
        )
        if record is None:
            return self._notice(
                400,
                "Nothing to confirm",
                "This subscription has ended or its link expired. You can subscribe again.",
                link=("/subscribe", "Subscribe"),
            )
        manage = means.tokens.make("manage", record.id)
        next_digest = self._next_digest(record.frequency, record.timezone)
        return html_response(
            self._site.page(
                "notice.html",
                heading="You are subscribed",
                message=f"Your first digest comes on {next_digest}, with that period's news. "
                "Every digest has a link to change your topics or leave.",
                link=(f"/preferences/{manage}", "Your preferences"),
            ),
            PRIVATE,
        )

    async def preferences(self, request: Request) -> Response:
        found = self._named_by_link(request, "manage")
        if isinstance(found, Response):
            return found
        means, subscriber_id = found
        cookie = request.cookies.get(CSRF_COOKIE)
        record = await to_thread.run_sync(
            means.subscriptions.get, subscriber_id, limiter=self._threads
        )
        if record is None:
            return self._ended()
        managed = record.source == FROM_CONFIG
        saved, error = False, None
        if request.method == "POST":
            fields = await _form_fields(request)
            if fields is None:
                return self._too_large()
            if not _csrf_ok(means.tokens, cookie, fields):
                error = _STALE_FORM
            elif not managed:
                error = self._choice_error(fields)
            if error is None:
                change = partial(
                    means.subscriptions.change,
                    subscriber_id,
                    None if managed else self._choice(fields),
                    _first(fields, "paused") == "yes",
                    utc_now(),
                )
                changed = await to_thread.run_sync(change, limiter=self._threads)
                if changed is None:
                    return self._ended()
                record, saved = changed, True
        return self._form(
            request,
            "preferences.html",
            means.tokens,
            cookie,
            status=400 if error else 200,
            error=error,
            saved=saved,
            record=record,
            managed=managed,
            paused=record.state == PAUSED,
            choice=Choice(record.topics, record.frequency, record.timezone),
            email=record.email,
            token=request.path_params["token"],
            next_digest=None if managed else self._next_digest(record.frequency, record.timezone),
        )

    async def unsubscribe(self, request: Request) -> Response:
        found = self._named_by_link(request, "manage")
        if isinstance(found, Response):
            return found
        means, subscriber_id = found
        if request.method == "GET":
            return self._button(
                "Unsubscribe",
                "Press the button to stop every digest to this address. Your address is then "
                "deleted.",
                "Unsubscribe",
            )
        left = await to_thread.run_sync(
            means.subscriptions.unsubscribe, subscriber_id, limiter=self._threads
        )
        if left:
            log.info("unsubscribed", subscriber=subscriber_id)
        return self._notice(
            200,
            "You are unsubscribed",
            "No more digests will be sent to this address, and it has been deleted. "
            "You can subscribe again at any time.",
            link=("/subscribe", "Subscribe again"),
        )

    def _named_by_link(
        self, request: Request, purpose: Purpose
    ) -> tuple[Subscribing, int] | Response:
        """Whom the link's token names, with the means to act for them; else the page saying
        why nobody."""
        if self._means is None:
            return self._closed()
        try:
            return self._means, self._means.tokens.subscriber(purpose, request.path_params["token"])
        except BadToken as bad:
            return self._bad_link(purpose, bad)

    @property
    def _default(self) -> Choice:
        return Choice(tuple(self._topics), "weekly", self._settings.digest.timezone)

    def _choice(self, fields: Mapping[str, list[str]]) -> Choice:
        topics = tuple(topic for topic in self._topics if topic in fields.get("topic", []))
        frequency = _first(fields, "frequency")
        timezone = _first(fields, "timezone")
        return Choice(
            topics,
            frequency if frequency in FREQUENCIES else "weekly",
            timezone if timezone in _timezones() else self._settings.digest.timezone,
        )

    def _choice_error(self, fields: Mapping[str, list[str]]) -> str | None:
        if not any(topic in self._topics for topic in fields.get("topic", [])):
            return "Choose at least one topic."
        if _first(fields, "frequency") not in FREQUENCIES:
            return "Choose how often: weekly or daily."
        if _first(fields, "timezone") not in _timezones():
            return "Choose your time zone from the list."
        return None

    def _next_digest(self, frequency: str, timezone: str) -> str:
        trigger = cron_trigger(schedule_of(self._settings, frequency), timezone)
        when = trigger.get_next_fire_time(None, utc_now())
        return f"{when:%A %-d %B at %H:%M} ({timezone})" if when else "the next scheduled day"

    def _form(
        self,
        request: Request,
        template: str,
        tokens: Tokens,
        cookie: str | None,
        *,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """A page with a form: its CSRF token bound to the browser's cookie (set if new)."""
        secret = cookie or secrets.token_urlsafe(16)
        page = self._site.page(
            template,
            status=status,
            csrf=tokens.make("form", secret),
            topic_choices=self._topics,
            frequencies=FREQUENCIES,
            timezones=_timezone_list(),
            **context,
        )
        response = html_response(page, PRIVATE)
        if cookie is None:
            response.set_cookie(
                CSRF_COOKIE,
                secret,
                max_age=7 * 24 * 3600,
                path="/",
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )
        return response

    def _button(self, heading: str, message: str, label: str) -> Response:
        page = self._site.page("button.html", heading=heading, message=message, label=label)
        return html_response(page, PRIVATE)

    def _notice(
        self, status: int, heading: str, message: str, link: tuple[str, str] | None = None
    ) -> Response:
        page = self._site.page(
            "notice.html", status=status, heading=heading, message=message, link=link
        )
        return html_response(page, PRIVATE)

    def _too_large(self) -> Response:
        return self._notice(413, "Form too large", "The form sent was far too large.")

    def _closed(self) -> Response:
        return self._notice(
            404,
            "No email subscriptions",
            "This site does not send digests by email. Follow it in a feed reader instead.",
        )

    def _ended(self) -> Response:
        return self._notice(
            410,
            "No subscription",
            "This subscription has ended. You can subscribe again at any time.",
            link=("/subscribe", "Subscribe"),
        )

    def _bad_link(self, purpose: Purpose, bad: BadToken) -> Response:
        if not bad.expired:
            return self._notice(
                400,
                "Link not valid",
                "This link is not one we sent, or it was cut short. Copy the whole link from "
                "the email into your browser.",
            )
        again = (
            "Subscribe again to get a new one."
            if purpose == "confirm"
            else "Use the link in your latest digest."
        )
        return self._notice(
            400, "Link expired", f"This link has expired. {again}", link=("/subscribe", "Subscribe")
        )

    def _send_confirmation(
        self, means: Subscribing, subscriber_id: int, email: str, choice: Choice
    ) -> None:
        settings = self._settings
        assert settings.digest.sender is not None
        token = means.tokens.make("confirm", subscriber_id)
        message = confirmation_message(
            title=settings.output.title,
            sender=settings.digest.sender,
            recipient=email,
            confirm_url=urljoin(settings.output.base_url, f"confirm/{token}"),
            topics=[self._topics[topic] for topic in choice.topics],
            frequency=choice.frequency,
            now=utc_now(),
        )
        sender = settings.digest.sender
        try:
            means.mailer.send(message, parseaddr(sender)[1], [email])
        except DeliveryError as error:
            log.warning("confirmation_not_sent", subscriber=subscriber_id, error=str(error))
            return
        log.info("confirmation_sent", subscriber=subscriber_id)


_STALE_FORM = (
    "The form had expired or came from another site. It has been renewed: please send it again."
)


async def _form_fields(request: Request) -> dict[str, list[str]] | None:
    """The url-encoded fields of a form, read up to MAX_FORM_BYTES; None when larger."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    return fields


def _first(fields: Mapping[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[0] if values else ""


def _csrf_ok(tokens: Tokens, cookie: str | None, fields: Mapping[str, list[str]]) -> bool:
    if not cookie:
        return False
    try:
        return tokens.read("form", _first(fields, "csrf")) == cookie
    except BadToken:
        return False


def _address_error(email: str) -> str | None:
    if len(email) > 254 or not EMAIL_ADDRESS.fullmatch(email):
        return "Enter an email address, such as name@example.org."
    return None


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def _timezone_list() -> list[str]:
    return sorted(zone for zone in _timezones() if "/" in zone or zone == "UTC")
