"""The provider sections ``[voipms]``, ``[ifax]``, ``[faxnummer]`` and which provider does what.

A section's presence configures that provider (DESIGN "Providers"); ``[faxage]``
is read by :mod:`faxd.config.loader` as before.  Once the sections are read,
``[inbound] providers`` and ``[outbound] provider`` are checked against what is
configured and what each provider can do, so that a config naming faxnummer.de
for receiving, or two senders without saying which one sends, fails at
``check-config`` rather than at the first fax.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from faxd.config.model import FaxnummerSettings, IfaxSettings, VoipmsSettings
from faxd.config.reader import Problems, Table, suggest
from faxd.config.secrets import (
    FAXNUMMER_CODE,
    IFAX_TOKEN,
    VOIPMS_PASSWORD,
    Secret,
    SecretSource,
    resolve_password,
)
from faxd.config.values import base_url, one_address
from faxd.phone import digits
from faxd.providers.base import PROVIDER_NAMES
from faxd.providers.registry import RECEIVING

#: Why ``[inbound] providers`` may not name faxnummer.de.
FAXNUMMER_CANNOT_RECEIVE = "faxnummer.de's API has no receive functions; it can only send"
AFTER_DELIVERY = ("delete", "move", "keep")
QUALITIES = {"low": "Low", "standard": "Standard", "hd": "HD"}
SENDER_MAX = 20
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER_CHARS = re.compile(r"^\+?[0-9 ()./-]+$")


@dataclass
class SectionContext:
    """What every provider section reader needs besides its table."""

    file: Path
    env: Mapping[str, str]
    #: Warnings for check-config and the start-up log (a secret written in the file).
    warnings: list[str]


def time_zone(table: Table, name: str, default: str, hint: str) -> str:
    """An IANA zone name such as ``America/Denver`` (``default`` when absent)."""
    zone = table.text(name) or default
    if not zone:
        return zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        table.problem(
            name, f'{zone!r} is not a time zone name; use one like "America/Denver" ({hint})'
        )
        return default
    return zone


def since_date(table: Table) -> date | None:
    """``since``: a date, written ``2026-01-31`` (bare or in quotes)."""
    value = table.raw("since")
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    table.problem(
        "since", f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. since = 2026-01-31"
    )
    return None


def _secret(table: Table, source: SecretSource, what: str, ctx: SectionContext) -> Secret | None:
    """The section's secret, a problem naming every way to give it, a warning if inline."""
    known = len(table.problems.items)
    secret = resolve_password(table, source, ctx.env, ctx.file)
    if secret is None and len(table.problems.items) == known:
        table.problem(
            "",
            f'no {what} given; set {source.key}_file = "/etc/faxd/{source.credential}", or '
            f"{source.key}, or the environment variable {source.env_var}, or "
            f"LoadCredential={source.credential} in the systemd unit",
        )
    if secret is not None and secret.inline:
        ctx.warnings.append(
            f"{table.key(source.key)}: the {what} is written in the config file; move it to "
            f"{source.key}_file (chmod 600) so the config can be shown without it"
        )
    return secret


def _phone(table: Table, name: str, hint: str) -> str:
    """A phone number as written (``+49 30 1234567``), checked only for its characters."""
    text = table.text(name)
    if text is None:
        return ""
    found = len(digits(text))
    if not _NUMBER_CHARS.match(text.strip()) or not 3 <= found <= 15:
        table.problem(name, f"{text!r} is not a phone number; {hint}")
        return ""
    return text.strip()


def read_voipms(table: Table | None, ctx: SectionContext) -> VoipmsSettings | None:
    """``[voipms]``: the API user, password, folders and what happens after delivery."""
    if table is None:
        return None
    d = VoipmsSettings(username="", password="")
    username = table.text(
        "username", required=True, hint="the e-mail you log in to voip.ms with (api_username)"
    )
    secret = _secret(table, VOIPMS_PASSWORD, "API password", ctx)
    url = base_url(table, d.base_url)
    folder = table.text("folder") or d.folder
    zone = time_zone(table, "timezone", d.timezone, "the zone VoIP.ms writes its dates in")
    after = table.choice("after_delivery", AFTER_DELIVERY, d.after_delivery) or d.after_delivery
    archive = table.text("archive_folder")
    if after == "move" and archive is None and not table.has("archive_folder"):
        table.problem(
            "archive_folder",
            'missing; after_delivery = "move" needs the folder delivered faxes go to, '
            'e.g. archive_folder = "ARCHIVE"',
        )
    elif after == "move" and archive is not None and archive.casefold() == folder.casefold():
        table.problem(
            "archive_folder",
            f"is the folder faxd takes faxes from ({folder!r}); name another folder",
        )
    from_number = table.text("from_number") or ""
    if from_number:
        found = digits(from_number)
        found = found[1:] if len(found) == 11 and found.startswith("1") else found
        if len(found) != 10 or not _NUMBER_CHARS.match(from_number.strip()):
            table.problem(
                "from_number",
                f"{from_number!r} is not one of your VoIP.ms fax numbers (10 digits, "
                'e.g. "5552341234")',
            )
        from_number = found
    settings_since = since_date(table)
    from_name = table.text("from_name") or ""
    timeout = table.duration("timeout", d.timeout)
    table.finish()
    if username is None or secret is None:
        return None
    return VoipmsSettings(
        username=username,
        password=secret.value,
        base_url=url,
        folder=folder,
        timezone=zone,
        after_delivery=after,
        archive_folder=archive or d.archive_folder,
        from_number=from_number,
        from_name=from_name,
        since=settings_since,
        timeout=timeout,
        password_source=secret.source,
    )


def read_ifax(table: Table | None, ctx: SectionContext) -> IfaxSettings | None:
    """``[ifax]``: the access token, caller id and send quality."""
    if table is None:
        return None
    d = IfaxSettings(access_token="")
    secret = _secret(table, IFAX_TOKEN, "access token", ctx)
    url = base_url(table, d.base_url, exposes="access token")
    caller_id = _phone(table, "caller_id", 'write it like "+13035550100"')
    quality = table.choice("quality", tuple(QUALITIES), d.quality.lower()) or "standard"
    settings_since = since_date(table)
    timeout = table.duration("timeout", d.timeout)
    table.finish()
    if secret is None:
        return None
    return IfaxSettings(
        access_token=secret.value,
        base_url=url,
        caller_id=caller_id,
        quality=QUALITIES[quality],
        since=settings_since,
        timeout=timeout,
        token_source=secret.source,
    )


def read_faxnummer(table: Table | None, ctx: SectionContext) -> FaxnummerSettings | None:
    """``[faxnummer]``: the product login and code, sender number, name and status mail."""
    if table is None:
        return None
    d = FaxnummerSettings(product_login="", product_code="")
    login = table.text(
        "product_login",
        required=True,
        hint='the fax account\'s product login, e.g. "acc12345" (not the customer-centre login)',
    )
    secret = _secret(table, FAXNUMMER_CODE, "product code", ctx)
    url = base_url(table, d.base_url, exposes="product code")
    source = _phone(table, "source", 'a number of this account, e.g. "+49 30 1234567"')
    sender = table.text("sender") or ""
    if len(sender) > SENDER_MAX or not all(" " <= ch <= "~" for ch in sender):
        table.problem(
            "sender",
            f"{sender!r} must be at most {SENDER_MAX} printable ASCII characters "
            "(no umlauts); faxnummer.de puts it in the fax header",
        )
        sender = ""
    email = table.text(
        "status_email",
        required=True,
        hint='faxnummer.de mails each fax\'s status there, e.g. "fax@example.com"',
    )
    if email is not None and not one_address(email):
        table.problem("status_email", f"{email!r} is not one email address like fax@example.com")
    timeout = table.duration("timeout", d.timeout)
    table.finish()
    if login is None or secret is None:
        return None
    return FaxnummerSettings(
        product_login=login,
        product_code=secret.value,
        base_url=url,
        source=source,
        sender=sender,
        status_email=email or "",
        timeout=timeout,
        code_source=secret.source,
    )


def require_one(present: Sequence[str], problems: Problems) -> None:
    """A config must configure at least one provider."""
    if not present:
        problems.add(
            "",
            "no provider section; add one of "
            + ", ".join(f"[{name}]" for name in PROVIDER_NAMES)
            + " with your account's login",
        )


def _named(table: Table, key: str, name: str, configured: Sequence[str]) -> bool:
    """Whether ``name`` (in ``key``) is a provider that is configured; a problem if not."""
    if name not in PROVIDER_NAMES:
        table.problem(
            key,
            f"{name!r} is not a provider; faxd knows {', '.join(PROVIDER_NAMES)}"
            + suggest(name, PROVIDER_NAMES),
        )
        return False
    if name not in configured:
        table.problem(
            key, f"{name!r} is not configured; add a [{name}] section or leave it out here"
        )
        return False
    return True


def inbound_providers(
    table: Table, wanted: list[str] | None, configured: Sequence[str], enabled: bool
) -> tuple[str, ...]:
    """``[inbound] providers`` checked, or every configured provider that can receive."""
    default = tuple(name for name in RECEIVING if name in configured)
    if wanted is None:
        if enabled and configured and not default:
            table.problem(
                "enabled",
                f"no configured provider can receive ({FAXNUMMER_CANNOT_RECEIVE}); set "
                "enabled = false, or add a section for a provider that receives",
            )
        return default
    chosen: list[str] = []
    for name in wanted:
        if name == "faxnummer":
            table.problem("providers", f"cannot name faxnummer: {FAXNUMMER_CANNOT_RECEIVE}")
        elif name in chosen:
            table.problem("providers", f"names {name!r} twice; name each provider once")
        elif _named(table, "providers", name, configured):
            chosen.append(name)
    if enabled and not wanted:
        table.problem(
            "providers",
            "is empty; name the providers to poll, or set enabled = false to receive nothing",
        )
    return tuple(chosen)


def outbound_provider(
    table: Table | None,
    wanted: str | None,
    configured: Sequence[str],
    senders: Sequence[str],
    enabled: bool,
) -> str:
    """``[outbound] provider`` checked, or the one configured provider that can send.

    ``senders`` are the configured providers set up to send (VoIP.ms needs a
    ``from_number``).  With the hot folder off the name is only checked, never
    required.
    """
    if table is not None and wanted is not None:
        if _named(table, "provider", wanted, configured) and wanted not in senders:
            table.problem(
                "provider",
                f"{wanted!r} is not set up to send; set from_number in [{wanted}] "
                "(one of the account's fax numbers)",
            )
        return wanted
    if table is not None and enabled and len(senders) > 1:
        table.problem(
            "provider",
            f"missing; more than one configured provider can send ({', '.join(senders)}), "
            f'so name the one the hot folder sends through, e.g. provider = "{senders[0]}"',
        )
    elif table is not None and enabled and not senders:
        table.problem(
            "provider",
            "no configured provider is set up to send; set from_number in [voipms], add "
            "another provider's section, or set enabled = false",
        )
    return senders[0] if senders else (configured[0] if configured else "")
