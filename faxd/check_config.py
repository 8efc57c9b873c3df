"""What ``faxd check-config`` prints: the config as faxd understood it.

An operator editing routes wants to see, before the next fax arrives, which
number goes where, in which order, with which paths resolved.  This renders a
loaded :class:`~faxd.config.Config` as plain text that fits 80 columns, with the
passwords shown only as where they came from.
"""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Iterable

from faxd.config import (
    ActionSpec,
    CommandSpec,
    Config,
    EmailSpec,
    FolderSpec,
    HttpSettings,
    OutboundSettings,
    PrintSpec,
    RouteSpec,
    SmtpSettings,
    mask_url,
)
from faxd.phone import format_number
from faxd.redact import redact

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
    lines += _section("FAXAGE", _faxage(config))
    lines += _section("Database", _database(config))
    lines += _section("Inbound", _inbound(config))
    lines += _routes(config.routes)
    lines += _section("SMTP", _smtp(config.smtp))
    lines += _section("Outbound", _outbound(config.outbound))
    lines += _section("HTTP", _http(config.http))
    return redact("\n".join(lines).rstrip() + "\n")


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


def _faxage(config: Config) -> list[tuple[str, str]]:
    faxage = config.faxage
    return [
        ("account", faxage.account),
        ("password", f"set (from {faxage.password_source or 'the config'})"),
        ("base_url", faxage.base_url),
        ("timeout", _seconds(faxage.timeout)),
    ]


def _database(config: Config) -> list[tuple[str, str]]:
    database = config.database
    rows = [("url", mask_url(database.url))]
    if not database.url.startswith("sqlite"):
        source = database.password_source
        rows.append(("password", f"set (from {source})" if source else "none given"))
    return rows


def _inbound(config: Config) -> list[tuple[str, str]]:
    inbound = config.inbound
    if not inbound.enabled:
        return [("enabled", "no (faxes are not fetched)")]
    return [
        ("enabled", "yes"),
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


def _http(http: HttpSettings | None) -> list[tuple[str, str]]:
    if http is None:
        return [("listener", "off (no [http]: no callbacks, /healthz or /metrics)")]
    rows = [
        ("listen", f"{http.listen_host}:{http.listen_port} (/healthz, /metrics, /hook/...)"),
        ("token", f"set (from {http.token_source})"),
    ]
    if not http.public_url:
        rows.append(("callbacks", "none asked for (set public_url to get them)"))
        return rows
    masked = http.hook_url("faxage", token="<TOKEN>")  # noqa: S106 - a placeholder shown instead of the token
    rows += [
        ("public URL", http.public_url),
        ("FAXAGE", f"url_notify on every sendfax is {masked}"),
        ("inbound push", f"paste {masked} into the FAXAGE portal, with <TOKEN> "
         f"replaced by the token (from {http.token_source})"),
    ]  # fmt: skip
    return rows


def _outbound(outbound: OutboundSettings) -> list[tuple[str, str]]:
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
