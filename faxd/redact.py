"""Keep secrets out of every text faxd emits.

Passwords are registered here once, when the config is loaded; every exception
message (see :mod:`faxd.errors`) and every log line (see :mod:`faxd.logs`) is
passed through :func:`redact`.  FAXAGE's ``ERR08`` answer echoes the whole POST
back, password and base64 file data included, so provider bodies also go through
:func:`summarize_body`, which redacts and truncates.

This module holds process-wide state on purpose: a secret must be hidden from
every thread and every logger, whoever registered it.
"""

from __future__ import annotations

import html
import re
import threading
from urllib.parse import quote, quote_plus

MASK = "********"

_lock = threading.Lock()
#: Longest first, so a secret containing another is masked whole.
_secrets: tuple[str, ...] = ()

# key=value pairs whose value is secret whatever it is, e.g. in an echoed POST.
_SECRET_FIELD = re.compile(
    r"(?i)\b(password|passwd|pass|secret|token)(\s*[=:]\s*|\"?\s*=>\s*\"?|\]?\s*=>\s*)([^&\s,;\"']+)"
)


def register_secret(secret: str | None) -> None:
    """Hide ``secret`` (and its URL-encoded forms) from every redacted text."""
    global _secrets
    if not secret or len(secret) < 3:
        # A 1-2 character "secret" would mask random letters everywhere; the
        # field-name rule below still hides it where it is labelled.
        return
    variants = {secret, quote(secret, safe=""), quote_plus(secret), html.escape(secret)}
    with _lock:
        merged = set(_secrets) | {v for v in variants if v}
        _secrets = tuple(sorted(merged, key=len, reverse=True))


def forget_secrets() -> None:
    """Drop every registered secret (tests use this between cases)."""
    global _secrets
    with _lock:
        _secrets = ()


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and labelled password masked."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def summarize_body(body: bytes | str, limit: int = 200) -> str:
    """A short, redacted, printable rendering of a provider's answer body."""
    # Redact before cutting: a cut through a secret would leave its first part
    # unrecognisable.  Bodies are bounded by the caller (at most a few KiB).
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = redact(text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        text = text[:limit] + f"... ({len(body)} bytes in all)"
    return text
