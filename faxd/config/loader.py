"""Turn the TOML config file into a :class:`~faxd.config.model.Config`, or say what is wrong.

Everything the daemon and the CLI do starts here, so the loader is strict: an
unknown key is an error (a typo must not silently fall back to a default), and
all problems are collected and raised together as one
:class:`~faxd.errors.ConfigError` whose ``problems`` each name file and key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from faxd.config.database import password_warning, read_database
from faxd.config.model import (
    NOTIFY_EVENTS,
    Config,
    DatabaseSettings,
    FaxageSettings,
    HttpSettings,
    InboundSettings,
    NotifySettings,
    OutboundSettings,
    RetentionSettings,
    RouteSpec,
    SmtpSettings,
)
from faxd.config.overlaps import check_overlaps, fixed_root, folder_actions
from faxd.config.providers import (
    SectionContext,
    inbound_providers,
    outbound_provider,
    read_faxnummer,
    read_ifax,
    read_voipms,
    require_one,
    time_zone,
)
from faxd.config.reader import Problems, Table, describe, suggest
from faxd.config.routes import read_routes
from faxd.config.sandbox import UnitSource, check_writable
from faxd.config.secrets import FAXAGE_PASSWORD, HTTP_TOKEN, SMTP_PASSWORD, resolve_password
from faxd.config.shared_folders import spool_share_warning
from faxd.config.values import base_url as check_base_url
from faxd.config.values import is_loopback as _is_loopback
from faxd.config.values import one_address as _one_address
from faxd.errors import ConfigError
from faxd.phone import country_code, nanp_number
from faxd.providers.base import PROVIDER_NAMES

DEFAULT_CONFIG_PATH = Path("/etc/faxd/faxd.toml")
SECTIONS = (
    "faxage", "database", "inbound", "routes", "smtp", "outbound", "retention", "notify",
    "http", "voipms", "ifax", "faxnummer",
)  # fmt: skip
RESOLUTIONS = {"standard": None, "fine": 1, "superfine": 2}
_URL_PASSWORD = re.compile(r"^([a-z0-9+.-]+://[^:/@]*:)([^@]*)(@)", re.IGNORECASE)


def config_path(path: Path | str | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The file to read: ``path``, else ``$FAXD_CONFIG``, else ``/etc/faxd/faxd.toml``."""
    chosen = Path(path) if path else Path(env.get("FAXD_CONFIG") or DEFAULT_CONFIG_PATH)
    return chosen.absolute()


def load_config(
    path: Path | str | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    unit: UnitSource | None = None,
) -> Config:
    """Read, check and resolve the config file; raise ConfigError listing every problem.

    ``unit`` finds the systemd unit whose write limits the folders are checked
    against (default: the unit this process runs under, or faxd.service).
    """
    file = config_path(path, env)
    document = _read_document(file)
    problems = Problems(file)
    config = _build(document, file, problems, env, unit or UnitSource(env=env))
    if problems.items or config is None:
        count = len(problems.items)
        summary = f"{file}: {count} problem{'s' if count != 1 else ''} in the config file"
        raise ConfigError(summary + ":\n  " + "\n  ".join(problems.items), problems=problems.items)
    return config


def _read_document(file: Path) -> dict[str, object]:
    def fail(message: str) -> ConfigError:
        return ConfigError(message, problems=[message])

    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise fail(
            f"{file}: config file not found; pass --config PATH, set FAXD_CONFIG, or copy "
            f"config/faxd.toml from the faxd sources to {DEFAULT_CONFIG_PATH} and edit it"
        ) from None
    except PermissionError:
        raise fail(
            f"{file}: cannot read the config file (permission denied); run faxd as a user "
            "that may read it, e.g. the faxd user"
        ) from None
    except OSError as exc:
        raise fail(f"{file}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise fail(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"{file}: TOML syntax error: {exc}") from None


def _build(
    document: dict[str, object],
    file: Path,
    problems: Problems,
    env: Mapping[str, str],
    unit: UnitSource,
) -> Config | None:
    base = file.parent
    top = Table(document, "", problems, base)
    for name in document:
        if name not in SECTIONS:
            problems.add(f"[{name}]", "unknown section" + suggest(name, SECTIONS))
    warnings: list[str] = []
    faxage = _faxage(top.table("faxage"), problems, file, env)
    context = SectionContext(file, env, warnings)
    voipms = read_voipms(top.table("voipms"), context)
    ifax = read_ifax(top.table("ifax"), context)
    faxnummer = read_faxnummer(top.table("faxnummer"), context)
    present = [name for name in PROVIDER_NAMES if name in document]
    require_one(present, problems)
    database = read_database(top.table("database"), base, env, file)
    warnings.extend(password_warning(database))
    inbound_table = top.table("inbound")
    wanted_inbound = inbound_table.text_list("providers") if inbound_table else None
    inbound = _inbound(inbound_table, base)
    smtp = _smtp(top.table("smtp"), file, env)
    outbound_table = top.table("outbound")
    country = _country(outbound_table)
    routes = read_routes(
        document.get("routes"), problems, base, have_smtp=smtp is not None, country=country
    )
    if inbound.enabled and not routes:
        problems.add(
            "routes",
            "no [[routes]]: every fax would be held; add at least a default "
            'route, e.g. [[routes]] name = "default" with a folder action',
        )
    wanted_outbound = outbound_table.text("provider") if outbound_table else None
    outbound = _outbound(outbound_table, base, inbound, country)
    warnings.extend(spool_share_warning(database, outbound))
    inbound_names = inbound_providers(
        inbound_table or Table({}, "[inbound]", problems, base),
        wanted_inbound,
        present,
        inbound.enabled,
    )
    senders = [n for n in present if n != "voipms" or (voipms is not None and voipms.from_number)]
    outbound_name = outbound_provider(
        outbound_table, wanted_outbound, present, senders, outbound.enabled
    )
    if inbound.spool_dir == outbound.spool_dir:
        problems.add(
            "[outbound] spool_dir",
            f"is the same folder as [inbound] spool_dir "
            f"({inbound.spool_dir}); give each its own folder",
        )
    retention = _retention(top.table("retention"))
    notify = _notify(top.table("notify"), have_smtp=smtp is not None)
    http = _http(top.table("http"), file, env)
    check_overlaps(routes, inbound, outbound, problems, retention)
    for key, message in check_writable(_written_folders(routes, inbound, outbound, database), unit):
        if unit.under_systemd:
            problems.add(key, message)
        else:
            warnings.append(f"{key}: {message} (a warning here: faxd is not running under it)")
    if problems.items:
        return None
    return Config(
        path=file,
        faxage=faxage,
        database=database,
        inbound=inbound,
        routes=routes,
        smtp=smtp,
        outbound=outbound,
        retention=retention,
        notify=notify,
        http=http,
        voipms=voipms,
        ifax=ifax,
        faxnummer=faxnummer,
        inbound_providers=inbound_names,
        outbound_provider=outbound_name,
        country=country,
        warnings=tuple(warnings),
    )


def _written_folders(
    routes: tuple[RouteSpec, ...],
    inbound: InboundSettings,
    outbound: OutboundSettings,
    database: DatabaseSettings,
) -> list[tuple[str, Path]]:
    """Every folder faxd writes with this config, each with the key that sets it."""
    folders: list[tuple[str, Path]] = []
    if inbound.enabled:
        folders.append(("[inbound] spool_dir", inbound.spool_dir))
        folders += [(key, fixed_root(action.path)[0]) for key, action in folder_actions(routes)]
    if outbound.enabled:
        folders += [
            (f"[outbound] {name}", getattr(outbound, name))
            for name in ("hot_folder", "sent_folder", "failed_folder", "spool_dir")
        ]
    if database.url.startswith("sqlite:////"):
        folders.append(("[database] url", Path(database.url[len("sqlite:///") :]).parent))
    return folders


def _faxage(
    table: Table | None, problems: Problems, file: Path, env: Mapping[str, str]
) -> FaxageSettings | None:
    if table is None:
        return None
    username = table.text("username", required=True, hint="your FAXAGE API user name")
    company = table.raw("company")
    if isinstance(company, int) and not isinstance(company, bool):
        company = str(company)
    elif company is None or isinstance(company, str):
        company = table.text("company", required=True, hint="your FAXAGE company ID")
    else:
        table.problem("company", 'must be your FAXAGE company ID, e.g. "12345"')
        company = None
    known_problems = len(problems.items)
    secret = resolve_password(table, FAXAGE_PASSWORD, env, file)
    if secret is None and len(problems.items) == known_problems:
        table.problem(
            "",
            'no password given; set password_file = "/etc/faxd/faxage-password", or '
            "password, or the environment variable FAXD_FAXAGE_PASSWORD, or "
            "LoadCredential=faxage-password in the systemd unit",
        )
    base_url = check_base_url(table, "https://api.faxage.com")
    timeout = table.duration("timeout", 60.0)
    zone = time_zone(table, "timezone", "", "the zone set for your account on FAXAGE")
    table.finish()
    if username is None or company is None or secret is None:
        return None
    return FaxageSettings(
        username=username,
        company=company,
        password=secret.value,
        base_url=base_url,
        timeout=timeout,
        password_source=secret.source,
        timezone=zone,
    )


def _megabytes(table: Table, name: str, default: float, *, zero: bool = False) -> float:
    """A size in MB above 0 (or 0 too, with ``zero``); fractions allowed (0.5 is 512 KiB)."""
    value = table.raw(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        table.problem(name, f"must be a number of MB (e.g. 200), not {describe(value)}")
        return default
    if not (value >= 0 if zero else value > 0) or value == float("inf"):
        lowest = "0 or more" if zero else "above 0"
        table.problem(name, f"must be a number of MB {lowest}, not {value}")
        return default
    return float(value)


def _inbound(table: Table | None, base: Path) -> InboundSettings:
    if table is None:
        return InboundSettings()
    d = InboundSettings()
    settings = InboundSettings(
        enabled=table.boolean("enabled", d.enabled),
        poll_interval=table.duration("poll_interval", d.poll_interval),
        sweep_interval=table.duration("sweep_interval", d.sweep_interval),
        spool_dir=table.path("spool_dir", d.spool_dir) or d.spool_dir,
        delete_after_delivery=table.boolean("delete_after_delivery", d.delete_after_delivery),
        max_attempts=table.integer("max_attempts", d.max_attempts, minimum=1),
        backoff_base=table.duration("backoff_base", d.backoff_base),
        backoff_max=table.duration("backoff_max", d.backoff_max),
        concurrency=table.integer("concurrency", d.concurrency, minimum=1, maximum=32),
        max_fax_mb=_megabytes(table, "max_fax_mb", d.max_fax_mb),
        min_free_mb=_megabytes(table, "min_free_mb", d.min_free_mb, zero=True),
    )
    if settings.backoff_max < settings.backoff_base:
        table.problem(
            "backoff_max",
            f"({settings.backoff_max:g}) is below backoff_base "
            f"({settings.backoff_base:g}); make it at least as large",
        )
    table.finish()
    return settings


def _retention(table: Table | None) -> RetentionSettings | None:
    if table is None:
        return None
    d = RetentionSettings()
    settings = RetentionSettings(
        sent_days=_days(table, "sent_days", d.sent_days),
        failed_days=_days(table, "failed_days", d.failed_days),
        records_days=_days(table, "records_days", d.records_days),
    )
    table.finish()
    return settings


def _notify(table: Table | None, *, have_smtp: bool) -> NotifySettings | None:
    if table is None:
        return None
    email = table.text_list("email") or []
    if not email:
        table.problem("email", 'is required: the admins to mail, e.g. ["it@example.com"]')
    for address in email:
        if not _one_address(address):
            table.problem("email", f"{address!r} is not one email address like it@example.com")
    events = table.text_list("events")
    for event in events or ():
        if event not in NOTIFY_EVENTS:
            table.problem(
                "events", f"{event!r} is not an event; choose from {', '.join(NOTIFY_EVENTS)}"
            )
    if not have_smtp:
        table.problem("email", "needs an [smtp] section: notifications are sent through it")
    d = NotifySettings(email=())
    settings = NotifySettings(
        email=tuple(email),
        events=frozenset(events) if events is not None else d.events,
        min_interval=table.duration("min_interval", d.min_interval, allow_zero=True),
        attach=table.boolean("attach", d.attach),
    )
    table.finish()
    return settings


#: Shortest callback token accepted: it is the only thing between the internet and a poll.
MIN_TOKEN_LENGTH = 16


def _http(table: Table | None, file: Path, env: Mapping[str, str]) -> HttpSettings | None:
    if table is None:
        return None
    listen = table.text("listen") or "127.0.0.1:8025"
    host, _colon, port_text = listen.rpartition(":")
    host = host.strip("[]")
    port = int(port_text) if port_text.isdigit() else -1
    if not host or not 0 < port < 65536:
        table.problem("listen", f'{listen!r} must be host:port, e.g. "127.0.0.1:8025"')
    public_url = (table.text("public_url") or "").rstrip("/")
    if public_url and not public_url.startswith(("https://", "http://")):
        table.problem(
            "public_url", f"{public_url!r} must start with https:// (the reverse proxy's URL)"
        )
    if "?" in public_url or "#" in public_url:
        table.problem(
            "public_url", "must not hold a query string or fragment: FAXAGE drops them"
        )
    secret = resolve_password(table, HTTP_TOKEN, env, file)
    if secret is None:
        table.problem(
            "",
            'no callback token; set token_file = "/etc/faxd/callback-token" (chmod 600, one '
            "line, e.g. from `openssl rand -hex 24`), or FAXD_HTTP_TOKEN, or "
            "LoadCredential=callback-token",
        )
    elif len(secret.value) < MIN_TOKEN_LENGTH or not secret.value.isascii() or not all(
        ch.isalnum() or ch in "-_" for ch in secret.value
    ):
        table.problem(
            "",
            f"the callback token ({secret.source}) must be at least {MIN_TOKEN_LENGTH} "
            "letters, digits, - or _ (it goes in a URL path); make one with "
            "`openssl rand -hex 24`",
        )
    table.finish()
    return HttpSettings(
        token=secret.value if secret else "",
        listen_host=host or "127.0.0.1",
        listen_port=port if 0 < port < 65536 else 8025,
        public_url=public_url,
        token_source=secret.source if secret else "",
    )


def _days(table: Table, name: str, default: float | None) -> float | None:
    """A number of days to keep something; ``0`` keeps it forever."""
    value = table.raw(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
        table.problem(name, f"must be a number of days (e.g. 90; 0 keeps forever), not {value!r}")
        return default
    return float(value) or None


def _smtp(table: Table | None, file: Path, env: Mapping[str, str]) -> SmtpSettings | None:
    if table is None:
        return None
    host = table.text("host", required=True, hint='the mail server, e.g. "localhost"')
    security = table.choice("security", ("none", "starttls", "tls"), "none") or "none"
    port = table.integer("port", 465 if security == "tls" else 25, minimum=1, maximum=65535)
    username = table.text("username")
    secret = resolve_password(table, SMTP_PASSWORD, env, file) if username else None
    if not username and (table.has("password") or table.has("password_file")):
        table.raw("password")
        table.raw("password_file")
        table.problem("username", "missing; a password is set, so give the login user name too")
    if username and security == "none" and not _is_loopback(host or ""):
        table.problem(
            "security",
            f'is "none", so the password for {username!r} would cross the network in clear '
            'text; set security = "starttls" (port 587) or "tls" (port 465), or relay '
            "through a mail server on this machine",
        )
    if username and secret is None:
        table.problem(
            "",
            f"username {username!r} is set but no password is given; set password_file, "
            "or FAXD_SMTP_PASSWORD, or LoadCredential=smtp-password",
        )
    from_addr = table.text(
        "from", required=True, hint='the sender address, e.g. "faxd@example.com"'
    )
    if from_addr is not None and not _one_address(from_addr):
        table.problem(
            "from",
            f"{from_addr!r} is not one email address; write it like "
            '"faxd@example.com" or "Fax Server <faxd@example.com>"',
        )
    timeout = table.duration("timeout", 30.0)
    table.finish()
    return SmtpSettings(
        host=host or "localhost",
        port=port,
        security=security,
        username=username,
        password=secret.value if secret else None,
        from_addr=from_addr or "faxd@localhost",
        timeout=timeout,
        password_source=secret.source if secret else "",
    )


def _country(table: Table | None) -> str:
    """``[outbound] country``: the ISO 3166 code national numbers are read in."""
    text = table.text("country") if table is not None else None
    if text is None:
        return Config.country
    try:
        return country_code(text)
    except ValueError as exc:
        assert table is not None
        table.problem("country", str(exc))
        return Config.country


def _outbound(
    table: Table | None, base: Path, inbound: InboundSettings, country: str
) -> OutboundSettings:
    spool_default = inbound.spool_dir.parent / "outbound"
    if table is None:
        return OutboundSettings(enabled=False, spool_dir=spool_default, country=country)
    d = OutboundSettings()
    enabled = table.boolean("enabled", True)
    folders = {
        name: table.path(name, required=enabled) or getattr(d, name)
        for name in ("hot_folder", "sent_folder", "failed_folder")
    }
    seen: dict[Path, str] = {}
    for name, folder in folders.items():
        if table.has(name) and folder in seen:
            table.problem(name, f"is the same folder as {seen[folder]}; use separate folders")
        seen.setdefault(folder, name)
    resolution = table.choice("resolution", tuple(RESOLUTIONS), None)
    settings = OutboundSettings(
        enabled=enabled,
        **folders,
        spool_dir=table.path("spool_dir", spool_default) or spool_default,
        settle_seconds=table.duration("settle_seconds", d.settle_seconds),
        status_interval=table.duration("status_interval", d.status_interval),
        poll_seconds=table.optional_duration("poll_seconds"),
        rescan_interval=table.duration("rescan_interval", d.rescan_interval),
        max_attempts=table.integer("max_attempts", d.max_attempts, minimum=1),
        max_file_mb=table.integer("max_file_mb", d.max_file_mb, minimum=1),
        clear_after_status=table.boolean("clear_after_status", d.clear_after_status),
        tagname=table.text("tagname"),
        tagnumber=_tagnumber(table),
        resolution=RESOLUTIONS[resolution] if resolution else None,
        priority=table.choice("priority", ("high", "low"), None),
        country=country,
    )
    table.finish()
    return settings


def _tagnumber(table: Table) -> str | None:
    """The header number in FAXAGE's 1.XXX.XXX.XXXX form."""
    text = table.text("tagnumber")
    if text is None:
        return None
    try:
        number = nanp_number(text)
    except ValueError as exc:
        table.problem("tagnumber", str(exc))
        return None
    return f"1.{number[:3]}.{number[3:6]}.{number[6:]}"


def mask_url(url: str) -> str:
    """``url`` with any password in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***\3", url)
