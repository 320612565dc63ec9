"""Hand a finished message to an SMTP server: TLS as configured, login, timeouts, retries.

The message arrives as bytes and leaves unchanged, so a digest resent after a crash is the
same message. Temporary trouble (a dropped connection, a timeout, a 4xx reply) is retried with
a growing delay; a permanent refusal (bad login, a 5xx reply, an untrusted certificate) is not,
since repeating it would change nothing but might lock the account.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from aggregator import logs
from aggregator.config import SmtpSettings
from aggregator.errors import AggregatorError

log = logs.get_logger(__name__)


class DeliveryError(AggregatorError):
    """The SMTP server did not accept a message; `temporary` says whether trying later may help."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        self.temporary = temporary
        super().__init__(message)


class Mailer:
    """Sends through the configured server; one connection per message (digests are few)."""

    def __init__(
        self,
        smtp: SmtpSettings,
        environ: Mapping[str, str],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._smtp = smtp
        self._environ = environ
        self._sleep = sleep

    @property
    def longest_send(self) -> timedelta:
        """An upper bound on how long `send` may take, retries included: the lease a sender
        holds on a digest, after which another process may take it over."""
        attempts = self._smtp.retries + 1
        waits = timedelta(
            seconds=sum(self._retry_delay(n).total_seconds() for n in range(self._smtp.retries))
        )
        # Each attempt is several round trips (connect, greet, TLS, login, envelope, data).
        return self._smtp.timeout * 6 * attempts + waits

    def send(self, message: bytes, sender: str, recipients: Sequence[str]) -> None:
        """Deliver `message`, retrying temporary failures; raise DeliveryError if it never went."""
        for attempt in range(self._smtp.retries + 1):
            try:
                self._send_once(message, sender, recipients)
                return
            except DeliveryError as error:
                if not error.temporary or attempt == self._smtp.retries:
                    raise
                delay = self._retry_delay(attempt)
                log.warning(
                    "smtp_retry",
                    host=self._smtp.host,
                    attempt=attempt + 1,
                    delay_seconds=delay.total_seconds(),
                    error=str(error),
                )
                self._sleep(delay.total_seconds())

    def _retry_delay(self, attempt: int) -> timedelta:
        return self._smtp.retry_delay * (1 << attempt)

    def _send_once(self, message: bytes, sender: str, recipients: Sequence[str]) -> None:
        smtp = self._smtp
        where = f"{smtp.host}:{smtp.port}"
        try:
            with self._connect() as client:
                if smtp.username:
                    client.login(smtp.username, self._password())
                refused = client.sendmail(sender, list(recipients), message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{where} refused the login of {smtp.username!r}: {_reply(exc)}", temporary=False
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            refusals = "; ".join(f"{a}: {_reply(r)}" for a, r in exc.recipients.items())
            raise DeliveryError(
                f"{where} refused every recipient: {refusals}", temporary=False
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{where} answered {_reply(exc)}", temporary=400 <= exc.smtp_code < 500
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{where}: the server's certificate is not trusted ({exc.verify_message}); "
                "set smtp.ca_file if it is signed by your own authority",
                temporary=False,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{where}: {exc}", temporary=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"{where}: {exc.__class__.__name__}: {exc}", temporary=True
            ) from exc
        if refused:
            log.warning("smtp_refused_some", host=smtp.host, refused=len(refused))

    def _connect(self) -> smtplib.SMTP:
        smtp = self._smtp
        timeout = smtp.timeout.total_seconds()
        context = ssl.create_default_context(cafile=smtp.ca_file)
        if smtp.security == "tls":
            return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        if smtp.security == "starttls":
            try:
                client.starttls(context=context)
            except BaseException:
                client.close()
                raise
        return client

    def _password(self) -> str:
        password = self._environ.get(self._smtp.password_env)
        if not password:
            raise DeliveryError(
                f"smtp.username is set but the environment variable "
                f"{self._smtp.password_env} (smtp.password_env) is empty",
                temporary=False,
            )
        return password


def _reply(error: smtplib.SMTPResponseException | tuple[int, bytes]) -> str:
    code, text = (error.smtp_code, error.smtp_error) if isinstance(error, BaseException) else error
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
