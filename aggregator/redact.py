"""Secrets out of what is printed and logged: a password in a URL, a token in its query.

A feed URL may carry credentials (`https://user:pass@host/feed`, `?token=...`) and a database
URL a password; both appear in log lines, error messages and /healthz, which end up in
journald, CI logs and screenshots. What is replaced keeps its place, so the line still says
which URL it was.
"""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(://[^/\s:@]*):[^/\s@]*@")
_SECRET_PARAMETER = re.compile(
    r"([?&;](?:access_token|api[_-]?key|apikey|auth|key|password|passwd|pwd|secret|sig|"
    r"signature|token)=)[^&#\s\"']+",
    re.IGNORECASE,
)


def redacted(text: str) -> str:
    """`text` with every URL password and secret query value in it replaced by ***."""
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_PARAMETER.sub(r"\1***", _PASSWORD.sub(r"\1:***@", text))
