"""Checks on single config values that several sections share: hosts, URLs, addresses.

They live apart from :mod:`faxd.config.loader` because every provider section
(:mod:`faxd.config.providers`) needs the same rule for a ``base_url`` (https, or
plain http only to this machine) and the same idea of one e-mail address.
"""

from __future__ import annotations

import ipaddress
from email.utils import getaddresses
from urllib.parse import urlsplit

from faxd.config.reader import Table


def url_host(url: str) -> str:
    """The host part of ``url`` ("" when it cannot be parsed)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (clear text never leaves it).

    Only ``localhost`` itself or a loopback IP address: a name that merely starts
    with ``127.`` (``127.0.0.1.evil.com``) is anybody's DNS name.
    """
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def one_address(text: str) -> bool:
    """Whether ``text`` is a single mailbox (``a@b`` or ``Name <a@b>``), on one line."""
    if not text.isprintable():  # CR, LF, tab and other controls
        return False
    found = getaddresses([text])
    if len(found) != 1:
        return False
    address = found[0][1]
    local, _at, domain = address.rpartition("@")
    return bool(local and domain) and not any(ch.isspace() for ch in address)


def base_url(table: Table, default: str, *, exposes: str = "password") -> str:
    """``base_url`` without a trailing slash: https, or plain http to this machine only.

    ``exposes`` names what plain http would give away, for the message.
    """
    url = (table.text("base_url") or default).rstrip("/")
    if not url.startswith(("https://", "http://")):
        table.problem("base_url", f"{url!r} must start with https://")
    elif url.startswith("http://") and not is_loopback(url_host(url)):
        table.problem(
            "base_url",
            f"{url!r} is plain http, which would send the {exposes} in clear text; "
            "use https:// (plain http is only for a simulator on this machine)",
        )
    return url
