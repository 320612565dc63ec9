"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it accepts.

Options imitate the servers digests meet: STARTTLS or implicit TLS with a certificate from a
test authority, a required login, a pause before answering DATA (to let two senders race), and
a hook run on DATA that may drop the connection or kill the sending process mid-send.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from ports import free_port

DROP = "drop"  # what an on_data hook returns to close the connection instead of answering


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SmtpServer:
    """Listens until `stop()`; `received` holds accepted messages, `data_attempts` every DATA."""

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.received: list[Received] = []
        self.data_attempts = 0
        self.logins: list[tuple[str, bool]] = []
        self.on_data: Callable[[], str | None] | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._users = users
        self._delay = delay
        self.port = free_port()
        options: dict[str, Any] = {}
        if starttls is not None:
            options |= {"tls_context": starttls, "require_starttls": True}
        if users is not None:
            options |= {"authenticator": self._authenticate, "auth_required": True}
        if implicit_tls is not None:
            # aiosmtpd counts only STARTTLS as TLS, and warns when AUTH is then required; the
            # test checks the login took place instead.
            options |= {"auth_require_tls": False, "auth_required": False}
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=implicit_tls,
            **options,
        )
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """Until `count` messages have been accepted; fails after `timeout` seconds."""
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            assert arrived, f"{len(self.received)} of {count} messages arrived"
            return list(self.received)

    def _authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        success = self._users is not None and self._users.get(login) == password
        with self._lock:
            self.logins.append((login, success))
        return AuthResult(success=success, handled=False)  # aiosmtpd then answers 535


class _Handler:
    def __init__(self, state: SmtpServer) -> None:
        self._state = state

    async def handle_DATA(self, server: Any, _session: Any, envelope: Any) -> str:
        state = self._state
        with state._lock:
            state.data_attempts += 1
        if state._delay:
            await asyncio.sleep(state._delay)
        if state.on_data is not None and state.on_data() == DROP:
            server.transport.close()
            return "421 connection dropped by the test"
        with state._arrived:
            state.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
            state._arrived.notify_all()
        return "250 OK"
