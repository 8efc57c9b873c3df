"""What ``faxd check-config`` prints: the config as faxd understood it.

An operator editing routes wants to see, before the next fax arrives, which
number goes where, in which order, with which paths resolved.  This renders a
loaded :class:`~faxd.config.Config` as plain text that fits 80 columns, with the
passwords shown only as where they came from.
"""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Callable, Iterable

from faxd.config import (
    ActionSpec,
    CommandSpec,
    Config,
    EmailSpec,
    FaxageSettings,
    FaxnummerSettings,
    FolderSpec,
    HttpSettings,
    IfaxSettings,
    OutboundSettings,
    PrintSpec,
    ProviderSettings,
    RouteSpec,
    SmtpSettings,
    VoipmsSettings,
    mask_url,
)
from faxd.errors import FaxdError
from faxd.outbound.numbers import label as provider_label
from faxd.phone import format_number
from faxd.providers import registry
from faxd.providers.base import OnlineCheck
from faxd.providers.registry import RECEIVING, configured
from faxd.redact import redact
from faxd.web.hooks import PROVIDERS

WIDTH = 80
_LABEL = 14  # column where values start


def render_config(config: Config) -> str:
    """The resolved config as readable text, secrets masked, lines <= 80 columns."""
    lines = [*_row("Config file", str(config.path)), ""]
    if config.warnings:
        lines.append("Warnings")
        for warning in config.warnings:
            lines += _row("  !", warning, indent=4)
        lines.append("")
    lines += _providers(config)
    lines += _section("Database", _database(config))
    lines += _section("Inbound", _inbound(config))
    lines += _routes(config.routes)
    lines += _section("SMTP", _smtp(config.smtp))
    lines += _section("Outbound", _outbound(config.outbound, config.outbound_provider))
    lines += _section("HTTP", _http(config.http, registry.configured(config)))
    return redact("\n".join(lines).rstrip() + "\n")


def check_online(
    config: Config,
    *,
    make_checker: Callable[[Config, str], OnlineCheck] = registry.make_checker,
) -> tuple[list[str], bool]:
    """``check-config --online``: log in to each configured provider with a harmless read.

    One line per provider, ``<name>: OK — <what it read>`` or ``<name>: FAILED —
    <reason>``, and whether all were OK.  Any failure, down to a provider whose
    adapter cannot be built, is that provider's line; it never stops the others.
    """
    lines: list[str] = []
    all_ok = True
    for name in configured(config):
        try:
            read = make_checker(config, name).check_login()
        except Exception as exc:  # every failure is reported, whatever raised it
            all_ok = False
            lines.append(f"{name}: FAILED — {_one_line(_reason(exc))}")
        else:
            lines.append(f"{name}: OK — {_one_line(read)}")
    return lines, all_ok


def _reason(exc: Exception) -> str:
    """What went wrong, from faxd's own message or the exception's type and text."""
    if isinstance(exc, FaxdError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _one_line(text: str) -> str:
    """``text`` redacted, its whitespace and control characters collapsed to single spaces."""
    printable = "".join(ch if ch.isprintable() else " " for ch in redact(text))
    return " ".join(printable.split())


def _section(title: str, rows: Iterable[tuple[str, str]]) -> list[str]:
    lines = [title]
    for label, value in rows:
        lines += _row(f"  {label}", value)
    return [*lines, ""]


def _row(label: str, value: str, indent: int = _LABEL) -> list[str]:
    """``label`` padded to ``indent`` then ``value``, wrapped to fit :data:`WIDTH`."""
    first = label.ljust(indent - 1) + " " if len(label) < indent else label + " "
    wrapped = textwrap.wrap(
        value,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=" " * (indent + 2),
        break_on_hyphens=False,
        break_long_words=True,
    )
    return wrapped or [first.rstrip()]


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


#: How each provider is titled in the output.
TITLES = {"faxage": "FAXAGE", "voipms": "VoIP.ms", "ifax": "iFax", "faxnummer": "faxnummer.de"}


def _providers(config: Config) -> list[str]:
    """One section per configured provider: account, secret's source, settings, abilities."""
    lines: list[str] = []
    for name in configured(config):
        settings = config.provider(name)
        if settings is not None:
            title = f"{TITLES[name]} [{name}]"
            lines += _section(title, [*_provider_rows(settings), ("can", _abilities(config, name))])
    return lines


def _set_from(source: str) -> str:
    return f"set (from {source or 'the config'})"


def _provider_rows(settings: ProviderSettings) -> list[tuple[str, str]]:
    rows = [("account", settings.account)]
    if isinstance(settings, FaxageSettings):
        rows.append(("password", _set_from(settings.password_source)))
    elif isinstance(settings, VoipmsSettings):
        rows += [
            ("password", _set_from(settings.password_source)),
            ("folder", settings.folder),
            ("timezone", settings.timezone),
        ]
        if settings.from_number:
            rows.append(("from", f"{settings.from_number} {settings.from_name}".rstrip()))
    elif isinstance(settings, IfaxSettings):
        rows += [
            ("token", _set_from(settings.token_source)),
            ("caller id", settings.caller_id or "the account's default"),
            ("quality", settings.quality),
        ]
    else:
        rows += [
            ("code", _set_from(settings.code_source)),
            ("source", settings.source or "the account's default"),
            ("sender", settings.sender or "(none)"),
            ("status mail", settings.status_email),
        ]
    if not isinstance(settings, FaxageSettings | FaxnummerSettings) and settings.since:
        rows.append(("since", settings.since.isoformat()))
    return [*rows, ("base_url", settings.base_url), ("timeout", _seconds(settings.timeout))]


def _abilities(config: Config, name: str) -> str:
    """What ``name`` does here: receive (and how faxes are released), send."""
    if name not in RECEIVING:
        receive = "no receiving (its API has no receive functions)"
    elif name in config.inbound_providers and config.inbound.enabled:
        receive = f"receive ({_release(config, name)})"
    else:
        receive = "receive (not polled: see [inbound])"
    voipms = config.voipms
    if name == "voipms" and voipms is not None and not voipms.from_number:
        send = "no sending (set from_number to send)"
    elif name == config.outbound_provider and config.outbound.enabled:
        send = "send (the hot folder's provider)"
    else:
        send = "send (not the hot folder's provider)"
    return f"{receive}; {send}"


def _release(config: Config, name: str) -> str:
    """What happens to a fax on the provider once it is delivered."""
    voipms = config.voipms
    if name == "voipms" and voipms is not None:
        mode = voipms.after_delivery
        if mode == "move":
            return f"moved to {voipms.archive_folder} after delivery"
        return "deleted after delivery" if mode == "delete" else "kept on VoIP.ms"
    if name == "ifax":
        return "kept on iFax: its API has no delete; faxd remembers what it took"
    if config.inbound.delete_after_delivery:
        return "deleted after delivery"
    return "kept on FAXAGE"


def _database(config: Config) -> list[tuple[str, str]]:
    database = config.database
    rows = [("url", mask_url(database.url))]
    if not database.url.startswith("sqlite"):
        source = database.password_source
        rows.append(("password", f"set (from {source})" if source else "none given"))
        rows.append(
            ("instance", f"{database.instance} (this server's name among those sharing it)")
        )
        rows.append(
            ("lease", f"{_seconds(database.lease_seconds)} (a dead server's work waits this long)")
        )
    return rows


def _inbound(config: Config) -> list[tuple[str, str]]:
    inbound = config.inbound
    if not inbound.enabled:
        return [("enabled", "no (faxes are not fetched)")]
    return [
        ("enabled", "yes"),
        ("providers", ", ".join(config.inbound_providers)),
        (
            "poll",
            f"every {_seconds(inbound.poll_interval)}, "
            f"full sweep every {_seconds(inbound.sweep_interval)}",
        ),
        ("spool", str(inbound.spool_dir)),
        (
            "delete",
            "on FAXAGE after delivery"
            if inbound.delete_after_delivery
            else "never (faxes stay on FAXAGE)",
        ),
        (
            "retries",
            f"{inbound.max_attempts} attempts, backoff "
            f"{_seconds(inbound.backoff_base)} to {_seconds(inbound.backoff_max)}",
        ),
        ("concurrency", f"{inbound.concurrency} faxes at a time"),
    ]


def _routes(routes: tuple[RouteSpec, ...]) -> list[str]:
    lines = ["Routes (first match wins)"]
    if not routes:
        lines.append("  (none: every fax is held on FAXAGE)")
    for number, route in enumerate(routes, start=1):
        lines.append(f"  {number}. {route.name}")
        if route.is_default:
            lines += _row("       match", "anything (default route)")
        if route.dnis:
            lines += _row("       dnis", ", ".join(format_number(n) for n in route.dnis))
        if route.cid:
            lines += _row(
                "       cid", ", ".join(format_number(n) or "(unknown)" for n in route.cid)
            )
        if route.hours is not None:
            lines += _row("       hours", str(route.hours))
        for action in route.actions:
            lines += _row(f"       {action.type}", _action(action))
    if routes and not routes[-1].is_default:
        lines.append("  (no default route: a fax no route matches is held on FAXAGE)")
    return [*lines, ""]


def _action(action: ActionSpec) -> str:
    if isinstance(action, FolderSpec):
        return action.path
    if isinstance(action, PrintSpec):
        argv = [action.command, *(["-d", action.printer] if action.printer else [])]
        argv += ["-n", str(action.copies)]
        for option in action.options:
            argv += ["-o", option]
        return shlex.join(argv)
    if isinstance(action, EmailSpec):
        attach = "" if action.attach else " (no attachment)"
        return f"to {', '.join(action.to)}{attach}; subject {action.subject!r}"
    if isinstance(action, CommandSpec):
        return f"{shlex.join(action.argv)} (timeout {_seconds(action.timeout)})"
    raise TypeError(f"unknown action {action!r}")


def _smtp(smtp: SmtpSettings | None) -> list[tuple[str, str]]:
    if smtp is None:
        return [("server", "none (no email actions)")]
    login = (
        f"{smtp.username}, password set (from {smtp.password_source})" if smtp.username else "none"
    )
    return [
        ("server", f"{smtp.host}:{smtp.port} ({smtp.security})"),
        ("from", smtp.from_addr),
        ("login", login),
        ("timeout", _seconds(smtp.timeout)),
    ]


def _http(http: HttpSettings | None, providers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    if http is None:
        return [("listener", "off (no [http]: no callbacks, /healthz or /metrics)")]
    rows = [
        ("listen", f"{http.listen_host}:{http.listen_port} (/healthz, /metrics, /hook/...)"),
        ("token", f"set (from {http.token_source})"),
    ]
    if not http.public_url:
        rows.append(("callbacks", "none asked for (set public_url to get them)"))
        return rows
    rows.append(("public URL", http.public_url))
    replaced = f"with <TOKEN> replaced by the token (from {http.token_source})"
    for name in providers or ("faxage",):
        masked = http.hook_url(name, token="<TOKEN>")  # noqa: S106 - a placeholder, not the token
        if name == "faxage":
            rows += [
                ("FAXAGE", f"url_notify on every sendfax is {masked}"),
                ("inbound push", f"paste {masked} into the FAXAGE portal, {replaced}"),
            ]
        elif name in PROVIDERS:
            rows.append((provider_label(name), f"{PROVIDERS[name].portal}: {masked}, {replaced}"))
    return rows


def _outbound(outbound: OutboundSettings, provider: str) -> list[tuple[str, str]]:
    if not outbound.enabled:
        return [("enabled", "no (the hot folder is not watched)")]
    watch = (
        f"polling every {_seconds(outbound.poll_seconds)}"
        if outbound.poll_seconds is not None
        else "inotify"
    )
    resolution = {None: "account default", 1: "fine", 2: "superfine"}[outbound.resolution]
    rows = [
        ("enabled", "yes"),
        ("provider", provider),
        ("hot folder", str(outbound.hot_folder)),
        ("sent", str(outbound.sent_folder)),
        ("failed", str(outbound.failed_folder)),
        ("spool", str(outbound.spool_dir)),
        (
            "watching",
            f"{watch}, rescan every {_seconds(outbound.rescan_interval)}, "
            f"settle {_seconds(outbound.settle_seconds)}",
        ),
        (
            "status",
            f"every {_seconds(outbound.status_interval)}; clear after final status: "
            f"{_yes(outbound.clear_after_status)}",
        ),
        ("attempts", str(outbound.max_attempts)),
        ("resolution", resolution),
        ("priority", outbound.priority or "account default (high)"),
    ]
    if outbound.tagname or outbound.tagnumber:
        rows.append(
            ("header", f"{outbound.tagname or '(default)'} {outbound.tagnumber or '(default)'}")
        )
    return rows
