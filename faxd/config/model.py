"""The resolved configuration: frozen dataclasses every other module reads.

:func:`faxd.config.load_config` builds these from the TOML file with every path
absolute, every number normalised and every password resolved; code that uses
them never looks at the file again.  Defaults here match the file's defaults, so
tests can build settings directly.  Passwords are excluded from ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from faxd.errors import ConfigError
from faxd.hours import Hours

DEFAULT_EMAIL_SUBJECT = "Fax from {cid} ({pages} pages)"
DEFAULT_EMAIL_BODY = (
    "A fax arrived on {dnis} from {cid}.\n"
    "\n"
    "Pages:     {pages}\n"
    "Received:  {received}\n"
    "Route:     {route}\n"
    "FAXAGE id: {recvid}\n"
)
ATTACHED_NOTE = "\nThe fax is attached ({ext}).\n"


@dataclass(frozen=True)
class FaxageSettings:
    """The FAXAGE account faxd logs in with."""

    username: str
    company: str
    password: str = field(repr=False)
    base_url: str = "https://api.faxage.com"
    timeout: float = 60.0
    #: Where the password came from, for ``faxd check-config`` (never the password).
    password_source: str = ""
    #: IANA zone FAXAGE writes its naive timestamps in ("" = this machine's zone).
    timezone: str = ""

    @property
    def server_zone(self) -> tzinfo | None:
        """The zone of FAXAGE's timestamps, or ``None`` for this machine's local zone."""
        return ZoneInfo(self.timezone) if self.timezone else None

    @property
    def account(self) -> str:
        """``username@company``, as logs and the CLI name the account."""
        return f"{self.username}@{self.company}"


@dataclass(frozen=True)
class VoipmsSettings:
    """A VoIP.ms account (``[voipms]``): the REST API with an API password."""

    username: str  # api_username: the account e-mail
    password: str = field(repr=False)
    base_url: str = "https://voip.ms/api/v1/rest.php"
    folder: str = "INBOX"  # the fax folder faxd ingests
    timezone: str = "America/New_York"  # zone of the API's naive dates
    after_delivery: str = "delete"  # delete | move | keep
    archive_folder: str = "ARCHIVE"  # with after_delivery = "move"
    from_number: str = ""  # sending: one of the account's fax numbers ("" = cannot send)
    from_name: str = ""
    since: date | None = None  # how far back a fresh install looks (default: 90 days)
    timeout: float = 60.0
    password_source: str = ""

    @property
    def account(self) -> str:
        return self.username


@dataclass(frozen=True)
class IfaxSettings:
    """An iFax account (``[ifax]``): JSON POSTs with an ``accessToken`` header."""

    access_token: str = field(repr=False)
    base_url: str = "https://api.ifaxapp.com/v1"
    caller_id: str = ""  # sending ("" = the account default)
    quality: str = "Standard"  # Low | Standard | HD
    since: date | None = None  # how far back a fresh install looks (default: day before)
    timeout: float = 60.0
    token_source: str = ""

    @property
    def account(self) -> str:
        """A stable, non-secret name for the account (the token's last four characters)."""
        return f"ifax-...{self.access_token[-4:]}" if len(self.access_token) >= 8 else "ifax"


@dataclass(frozen=True)
class FaxnummerSettings:
    """A faxnummer.de (Portunity) account (``[faxnummer]``): sending only."""

    product_login: str  # sProductLogin
    product_code: str = field(repr=False)  # sProductCode
    base_url: str = "https://wr.ispsuite.portunity.de/webrequests/product-voip/index.php"
    source: str = ""  # sSource: a number of this account
    sender: str = ""  # sSender: at most 20 printable ASCII characters
    status_email: str = ""  # sEmail: required by the API
    timeout: float = 60.0
    code_source: str = ""

    @property
    def account(self) -> str:
        return self.product_login


ProviderSettings = FaxageSettings | VoipmsSettings | IfaxSettings | FaxnummerSettings


@dataclass(frozen=True)
class DatabaseSettings:
    """Where faxd keeps its state (an SQLAlchemy URL, never holding the password)."""

    url: str = "sqlite:////var/lib/faxd/faxd.db"
    password: str | None = field(default=None, repr=False)  # PostgreSQL's, if any
    password_source: str = ""
    #: This server's name among several sharing the database (default: the hostname).
    instance: str = "faxd"
    #: How long a claim of a dead instance keeps others off its work.
    lease_seconds: float = 60.0


@dataclass(frozen=True)
class InboundSettings:
    """How received faxes are polled, retried and cleaned up."""

    enabled: bool = True
    poll_interval: float = 60.0
    sweep_interval: float = 3600.0
    spool_dir: Path = Path("/var/lib/faxd/spool")
    delete_after_delivery: bool = True
    max_attempts: int = 10
    backoff_base: float = 30.0
    backoff_max: float = 3600.0
    concurrency: int = 4
    max_fax_mb: float = 200.0  # a larger getfax body is cut off and the fax failed
    min_free_mb: float = 500.0  # below this (spool or a delivery folder) downloads pause


#: Mode of a delivered fax file unless the folder action sets ``mode``.
DEFAULT_FILE_MODE = 0o640


def folder_mode(file_mode: int) -> int:
    """The mode of folders made for files of ``file_mode``: search (x) wherever read (r).

    0640 -> 0750, 0660 -> 0770, 0644 -> 0755.
    """
    readable = file_mode & 0o444
    return file_mode | (readable >> 2)


@dataclass(frozen=True)
class FolderSpec:
    """Write the fax to a path rendered from a template (absolute after loading).

    ``mode`` is the delivered file's mode (its folders get :func:`folder_mode`);
    ``group``/``gid``, when set, is the group the file and the folders faxd makes
    are given, e.g. the office staff's.
    """

    type: ClassVar[str] = "folder"
    path: str
    mode: int = DEFAULT_FILE_MODE
    group: str | None = None
    gid: int | None = None

    @property
    def dir_mode(self) -> int:
        """The mode of each folder this action creates."""
        return folder_mode(self.mode)


@dataclass(frozen=True)
class PrintSpec:
    """Print the fax with ``lp`` (or a compatible ``command``); ``printer=""`` is lp's default."""

    type: ClassVar[str] = "print"
    printer: str
    options: tuple[str, ...] = ()
    copies: int = 1
    command: str = "lp"


@dataclass(frozen=True)
class EmailSpec:
    """Mail the fax (attached unless ``attach`` is false) through ``[smtp]``."""

    type: ClassVar[str] = "email"
    to: tuple[str, ...]
    subject: str = DEFAULT_EMAIL_SUBJECT
    body: str = DEFAULT_EMAIL_BODY + ATTACHED_NOTE
    attach: bool = True


@dataclass(frozen=True)
class CommandSpec:
    """Run a program for the fax; it succeeds when the program exits 0."""

    type: ClassVar[str] = "command"
    argv: tuple[str, ...]
    timeout: float = 60.0


ActionSpec = FolderSpec | PrintSpec | EmailSpec | CommandSpec


@dataclass(frozen=True)
class RouteSpec:
    """One ``[[routes]]`` entry; every match key given must match, first route wins."""

    name: str
    dnis: tuple[str, ...] = ()
    cid: tuple[str, ...] = ()
    hours: Hours | None = None
    actions: tuple[ActionSpec, ...] = ()
    #: Providers whose faxes the route takes (``()``: every provider).
    providers: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        """A route without match keys takes every fax no earlier route took."""
        return not self.dnis and not self.cid and self.hours is None and not self.providers


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server email actions send through."""

    host: str = "localhost"
    port: int = 25
    security: str = "none"  # none | starttls | tls
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    from_addr: str = "faxd@localhost"
    timeout: float = 30.0
    password_source: str = ""


@dataclass(frozen=True)
class OutboundSettings:
    """The hot folder and how its files are sent and followed."""

    enabled: bool = True
    hot_folder: Path = Path("/srv/fax/outbox")
    sent_folder: Path = Path("/srv/fax/sent")
    failed_folder: Path = Path("/srv/fax/failed")
    spool_dir: Path = Path("/var/lib/faxd/outbound")
    settle_seconds: float = 2.0
    status_interval: float = 60.0
    poll_seconds: float | None = None  # None: inotify; a number: the polling observer
    rescan_interval: float = 300.0
    max_attempts: int = 10
    max_file_mb: int = 100  # larger drops are rejected: each send streams the file from disk
    clear_after_status: bool = False
    tagname: str | None = None
    tagnumber: str | None = None  # 1.XXX.XXX.XXXX, as FAXAGE wants it
    resolution: int | None = None  # None: account default; 1 fine; 2 superfine
    priority: str | None = None  # None | "high" | "low"
    #: ``[outbound] country`` (also :attr:`Config.country`): national numbers in file
    #: names and ``faxd send --to`` are read in this ISO 3166 country.
    country: str = "US"


#: Every event ``[notify]`` can mail about (DESIGN "Operations").
NOTIFY_EVENTS: tuple[str, ...] = (
    "fax_failed",  # a fax gave up after max_attempts
    "fax_held",  # no route matched a fax
    "job_failed",  # an outbound job failed
    "auth_failed",  # the provider refused the login
    "provider_down",  # no successful poll for three poll intervals
    "disk_low",  # downloads paused for want of disk
    "recovered",  # what raised auth_failed, provider_down or disk_low has cleared
)


@dataclass(frozen=True)
class NotifySettings:
    """Who hears about problems, which ones, and how often at most."""

    email: tuple[str, ...]
    events: frozenset[str] = frozenset(NOTIFY_EVENTS)
    min_interval: float = 3600.0  # per event kind; what falls inside is summarised
    attach: bool = False  # attach the fax itself to a fax_failed / fax_held mail


@dataclass(frozen=True)
class RetentionSettings:
    """How long ``[retention]`` keeps finished work; ``None`` keeps it forever."""

    sent_days: float | None = 90.0  # files in sent_folder
    failed_days: float | None = 180.0  # files (and reason files) in failed_folder
    records_days: float | None = 365.0  # finished faxes and jobs in the database


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP listener: provider callbacks, ``/healthz`` and ``/metrics``."""

    token: str = field(repr=False)
    listen_host: str = "127.0.0.1"
    listen_port: int = 8025
    #: How providers reach the listener (through a reverse proxy); "" = no callbacks asked for.
    public_url: str = ""
    #: Where the token came from, for ``faxd check-config`` (never the token).
    token_source: str = ""

    def hook_url(self, provider: str, *, token: str | None = None) -> str:
        """``{public_url}/hook/{token}/{provider}``; ``token`` replaces the real one (masking)."""
        return f"{self.public_url}/hook/{self.token if token is None else token}/{provider}"


@dataclass(frozen=True)
class Config:
    """Everything faxd was told, resolved from one file."""

    path: Path
    faxage: FaxageSettings | None  # None: no [faxage] section
    database: DatabaseSettings
    inbound: InboundSettings
    routes: tuple[RouteSpec, ...]
    smtp: SmtpSettings | None
    outbound: OutboundSettings
    retention: RetentionSettings | None = None  # None: no [retention] section, keep everything
    notify: NotifySettings | None = None  # None: no [notify] section, nobody is mailed
    http: HttpSettings | None = None  # None: no [http] section, no listener
    voipms: VoipmsSettings | None = None  # None: no [voipms] section
    ifax: IfaxSettings | None = None  # None: no [ifax] section
    faxnummer: FaxnummerSettings | None = None  # None: no [faxnummer] section
    #: ``[inbound] providers``: the providers polled (default: every configured one that receives).
    inbound_providers: tuple[str, ...] = ("faxage",)
    #: ``[outbound] provider``: the one that sends the hot folder's files.
    outbound_provider: str = "faxage"
    #: ``[outbound] country``: ISO 3166 code national numbers are read in.
    country: str = "US"
    #: Things that will not lose a fax here but may under the service (see
    #: :mod:`faxd.config.sandbox`); check-config prints them, ``faxd run`` logs them.
    warnings: tuple[str, ...] = ()

    def provider(self, name: str) -> ProviderSettings | None:
        """The settings of provider ``name`` (``faxage``, ``voipms``...), None if not configured."""
        found: ProviderSettings | None = getattr(self, name, None)
        return found

    @property
    def account(self) -> str:
        """The account one-provider views report (status, health, metrics).

        The first provider polled, else the one that sends.
        """
        for name in (*self.inbound_providers, self.outbound_provider):
            settings = self.provider(name)
            if settings is not None:
                return settings.account
        return ""

    def require_faxage(self, what: str) -> FaxageSettings:
        """``[faxage]``, or a ConfigError saying that ``what`` needs it."""
        if self.faxage is None:
            raise ConfigError(
                f"{self.path}: {what} needs a [faxage] section with your FAXAGE login; "
                "add one, or use a command for a configured provider"
            )
        return self.faxage
