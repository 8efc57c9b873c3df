"""Small fakes and builders for the inbound pipeline's tests (fixtures: conftest.py).

- ``ManualClock``: a clock tests move by hand (backoff elapses without sleeping).
- ``FakeInbox``: an in-memory stand-in for the three FAXAGE calls the pipeline
  makes, passed in through the constructor, for unit tests that need exact
  control (malformed lines, errors on a given call).
- ``RecordingAction``: an action that records what it delivered and can be told
  to fail; ``actions_for`` builds them from ``CommandSpec`` argv names.
- ``make_config``: a :class:`~faxd.config.Config` built in code for a tmp dir.
- ``write_config``: a real TOML config file for tests that load one; ``config_file``
  one with a login, a folder route and the ``[inbound]`` lines given.
- ``start_daemon`` / ``wait_for_requests`` / ``kill_while_draining``: a real
  ``faxd run --once`` child process for the crash tests, waiting until it is at
  work, and the SIGKILL-and-restart loop; ``rounds_until``: the fault tests' loop.
- ``commit_levels``: the ``synchronous`` level of each commit a database makes.
- ``provider_config_file`` and friends: the same office (three lines, a folder
  each) for every provider that receives, configured through its simulator
  kit's section (:mod:`faxd.sim.kits`), for the tests run once per provider.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event

from faxd.actions.base import Deliverable
from faxd.config import (
    ActionSpec,
    CommandSpec,
    Config,
    DatabaseSettings,
    FaxageSettings,
    FolderSpec,
    InboundSettings,
    OutboundSettings,
    RouteSpec,
    SmtpSettings,
)
from faxd.errors import DeliveryError, FaxdError, TransientError
from faxd.providers.faxage.provider import FaxageInbound, make_inbound
from faxd.providers.faxage.records import (
    DownloadResult,
    ListfaxRecord,
    ListfaxResult,
    MalformedLine,
)
from faxd.sim import SimFax
from faxd.sim.kits import SimKit

PDF = b"%PDF-1.4\n"


@dataclass
class ManualClock:
    """A clock that only moves when told to."""

    now: datetime = field(default_factory=lambda: datetime(2024, 3, 4, 10, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FixedRandom:
    """A random source that always answers the same fraction."""

    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@dataclass
class InboxFax:
    recvid: int
    dnis: str
    cid: str = "3035550100"
    data: bytes = b""
    deleted: bool = False
    received: datetime | None = None  # FAXAGE's recvdate; default: 09:00 + recvid minutes

    @property
    def remote_id(self) -> str:
        """The id the pipeline knows the fax by."""
        return str(self.recvid)


class FakeInbox:
    """The listfax/getfax/delfax calls of a FAXAGE account, in memory.

    ``fail[operation]`` holds exceptions to raise, one per call, before the
    operation runs; ``malformed`` lines are reported with every listing.  A
    listing comes in batches of ``batch_size`` records; ``break_after`` raises
    ``TransientError`` after that many batches (an answer that broke off).
    ``getfax_limits`` records the ``max_bytes`` of each getfax.
    """

    def __init__(self) -> None:
        self.faxes: dict[int, InboxFax] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, list[Exception]] = {}
        self.malformed: list[MalformedLine] = []
        self.on_delfax: Callable[[int], None] | None = None
        self.batch_size = 1000
        self.break_after: int | None = None
        self.getfax_limits: list[int | None] = []
        self._next = 1001

    def add(self, dnis: str, *, cid: str = "3035550100", data: bytes | None = None) -> InboxFax:
        recvid = self._next
        self._next += 1
        fax = InboxFax(recvid, dnis, cid, data or PDF + f"fax {recvid}\n".encode())
        self.faxes[recvid] = fax
        return fax

    def _maybe_fail(self, operation: str) -> None:
        queue = self.fail.get(operation)
        if queue:
            raise queue.pop(0)

    def listfax_batches(
        self, *, idgt: int | None = None, idasc: bool = True
    ) -> Iterator[ListfaxResult]:
        whole = self.listfax(idgt=idgt, idasc=idasc)
        records = whole.records
        for number, start in enumerate(range(0, max(len(records), 1), self.batch_size)):
            if self.break_after is not None and number >= self.break_after:
                raise TransientError("body broke off (ProtocolError)", operation="listfax")
            malformed = whole.malformed if number == 0 else ()
            yield ListfaxResult(records[start : start + self.batch_size], malformed)

    def listfax(self, *, idgt: int | None = None, idasc: bool = True) -> ListfaxResult:
        self.calls.append(("listfax", idgt))
        self._maybe_fail("listfax")
        records = tuple(
            ListfaxRecord(
                recvid=f.recvid,
                recvdate=f.received
                or datetime(2024, 3, 4, 9, 0) + timedelta(minutes=f.recvid - 1000),
                starttime=None,
                cid=f.cid,
                dnis=f.dnis,
                filename=f"fax{f.recvid}.pdf",
                pagecount=1,
            )
            for f in sorted(self.faxes.values(), key=lambda f: f.recvid)
            if not f.deleted and (idgt is None or f.recvid > idgt)
        )
        return ListfaxResult(records, tuple(self.malformed))

    def getfax(self, recvid: int, dest: Path, *, max_bytes: int | None = None) -> DownloadResult:
        self.calls.append(("getfax", recvid))
        self.getfax_limits.append(max_bytes)
        self._maybe_fail("getfax")
        data = self.faxes[recvid].data
        dest.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        return DownloadResult(dest, len(data), digest, "pdf", f"fax{recvid}.pdf")

    def delfax(self, recvid: int) -> None:
        self.calls.append(("delfax", recvid))
        self._maybe_fail("delfax")
        if self.on_delfax is not None:
            self.on_delfax(recvid)
        self.faxes[recvid].deleted = True

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)


@dataclass
class RecordingAction:
    """An action that remembers every fax it delivered; ``failures`` are raised first."""

    name: str
    failures: list[Exception] = field(default_factory=list)
    delivered: list[tuple[int, bytes]] = field(default_factory=list)
    before: Callable[[Deliverable], None] | None = None

    type = "command"

    @property
    def target(self) -> str:
        return f"recorder {self.name}"

    def deliver(self, item: Deliverable) -> str:
        if self.before is not None:
            self.before(item)
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append((item.facts.recvid, item.path.read_bytes()))
        return f"{self.name} ok {item.facts.recvid}"


class ActionBook:
    """``actions_for`` for the pipeline: one RecordingAction per CommandSpec argv[0]."""

    def __init__(self) -> None:
        self.actions: dict[str, RecordingAction] = {}

    def __getitem__(self, name: str) -> RecordingAction:
        return self.actions.setdefault(name, RecordingAction(name))

    def __call__(self, spec: ActionSpec, *, smtp: SmtpSettings | None) -> RecordingAction:
        assert isinstance(spec, CommandSpec)
        return self[spec.argv[0]]


def recorder_route(name: str, *actions: str, dnis: tuple[str, ...] = ()) -> RouteSpec:
    """A route whose actions are recorders named ``actions``."""
    return RouteSpec(name=name, dnis=dnis, actions=tuple(CommandSpec(argv=(a,)) for a in actions))


#: The login of the fake account (the simulator's is taken from its fixture).
FAKE_FAXAGE = FaxageSettings("acme", "12345", "fake-Pa55word-q7", timeout=2.0)


def faxage_inbound(client: Any, config: Config | None = None) -> FaxageInbound:
    """FAXAGE's inbound adapter around ``client`` (the simulator's client or a FakeInbox),
    as ``config`` sets it up (default: the fake account, deleting after delivery)."""
    if config is None:
        return FaxageInbound(client, FAKE_FAXAGE.account)
    return make_inbound(config, client=client)


def make_config(
    tmp_path: Path,
    routes: tuple[RouteSpec, ...],
    *,
    faxage: FaxageSettings = FAKE_FAXAGE,
    smtp: SmtpSettings | None = None,
    **inbound: Any,
) -> Config:
    """A Config for tests, with the spool and database under ``tmp_path``."""
    settings = InboundSettings(
        spool_dir=tmp_path / "spool",
        poll_interval=60.0,
        backoff_base=10.0,
        backoff_max=300.0,
        max_attempts=4,
    )
    return Config(
        path=tmp_path / "faxd.toml",
        faxage=faxage,
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'faxd.db'}"),
        inbound=replace(settings, **inbound),
        routes=routes,
        smtp=smtp,
        outbound=OutboundSettings(enabled=False),
    )


SALES, SUPPORT, MAIN = "+13035550101", "+13035550102", "+13035550103"


def sim_settings(sim: Any) -> FaxageSettings:
    """The simulator's login, as the config would carry it."""
    return FaxageSettings(sim.username, sim.company, sim.password, base_url=sim.base_url)


def office_routes(root: Path) -> tuple[RouteSpec, ...]:
    """Two routes by number and a default, each writing into its own folder under root."""
    return (
        RouteSpec(
            "sales", dnis=(SALES,), actions=(FolderSpec(f"{root}/sales/{{recvid}}.{{ext}}"),)
        ),
        RouteSpec(
            "support",
            dnis=(SUPPORT,),
            actions=(FolderSpec(f"{root}/support/{{received:%Y-%m}}/fax-{{recvid}}.pdf"),),
        ),
        RouteSpec("default", actions=(FolderSpec(f"{root}/inbox/{{dnis}}-{{recvid}}.{{ext}}"),)),
    )


def expected_path(root: Path, fax: SimFax) -> Path:
    """Where the office routes put ``fax`` (the test's own reading of the templates)."""
    dnis = f"+1{fax.dnis}"  # the simulator keeps FAXAGE's 10 digits; faxd stores E.164
    if dnis == SALES:
        return root / "sales" / f"{fax.recvid}.pdf"
    if dnis == SUPPORT:
        return root / "support" / fax.recvdate.strftime("%Y-%m") / f"fax-{fax.recvid}.pdf"
    return root / "inbox" / f"{fax.dnis}-{fax.recvid}.pdf"


def require_delivered(root: Path) -> Any:
    """A sim delete_check: the fax's file must already hold its bytes when delfax arrives."""

    def check(fax: SimFax) -> str | None:
        path = expected_path(root, fax)
        if not path.exists():
            return f"fax {fax.recvid} deleted before {path} existed"
        if path.read_bytes() != fax.data:
            return f"fax {fax.recvid} deleted while {path} held other bytes"
        return None

    return check


#: The lines the per-provider tests receive on (10 digits) and the folder each is routed to.
LINE_FOLDERS = {"3035550101": "sales", "3035550102": "support", "3035550103": "inbox"}
#: The same lines as each simulator's ``seed_inbound`` takes them (VoIP.ms shows 10 digits).
SEED_LINES = {
    "faxage": (SALES, SUPPORT, MAIN),
    "voipms": tuple(LINE_FOLDERS),
    "ifax": (SALES, SUPPORT, MAIN),
}
#: The operation that releases a fax on each provider (iFax keeps every fax: none).
RELEASE_OPERATION = {"faxage": "delfax", "voipms": "deleteFaxMessage", "ifax": None}
#: The operation that downloads a fax on each provider.
DOWNLOAD_OPERATION = {"faxage": "getfax", "voipms": "getFaxMessagePDF", "ifax": "fax-download"}


def provider_routes(root: Path) -> str:
    """``[[routes]]`` for the three lines: two by number, a default; one folder each."""
    sales, support = (f"+1{line}" for line in tuple(LINE_FOLDERS)[:2])
    return f"""
[[routes]]
name = "sales"
dnis = ["{sales}"]
actions = [{{ type = "folder", path = "{root}/sales/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "support"
dnis = ["{support}"]
actions = [{{ type = "folder", path = "{root}/support/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{root}/inbox/{{recvid}}.{{ext}}" }}]
"""


def provider_config_file(
    tmp_path: Path, name: str, section: str, *, inbound: str = "", extra: str = ""
) -> Path:
    """A real config file polling provider ``name`` only, its ``section`` from the sim kit
    (``extra`` lines appended to it), the ``[inbound]`` lines given and the three-line
    office of :func:`provider_routes` delivering under ``tmp_path / "fax"``."""
    return write_config(
        tmp_path / "faxd.toml",
        f"""{section}{extra}
[database]
url = "sqlite:///{tmp_path / "faxd.db"}"

[inbound]
providers = ["{name}"]
spool_dir = "{tmp_path / "spool"}"
{inbound}
{provider_routes(tmp_path / "fax")}
[outbound]
enabled = false
""",
    )


def provider_path(root: Path, fax: Any) -> Path:
    """Where :func:`provider_routes` puts a simulator's ``fax`` (any provider's)."""
    line = "".join(ch for ch in fax.dnis if ch.isdigit())[-10:]
    # iFax's "jobId:transactionId" is written with "_": ":" is refused on SMB shares.
    return root / LINE_FOLDERS.get(line, "inbox") / f"{fax.remote_id.replace(':', '_')}.pdf"


def provider_require_delivered(root: Path) -> Callable[[Any], str | None]:
    """A sim delete_check for :func:`provider_routes`: the file holds the fax's bytes."""

    def check(fax: Any) -> str | None:
        path = provider_path(root, fax)
        if not path.exists():
            return f"fax {fax.remote_id} released before {path} existed"
        if path.read_bytes() != fax.data:
            return f"fax {fax.remote_id} released while {path} held other bytes"
        return None

    return check


@dataclass
class Receiver:
    """One receiving provider under test: its name, kit and running simulator."""

    name: str
    kit: SimKit
    sim: Any

    def __repr__(self) -> str:
        return f"Receiver({self.name})"

    def seed(self, n: int, *, size: int | None = None) -> list[Any]:
        """``n`` faxes (of about ``size`` bytes) round-robin over :func:`provider_routes`' lines."""
        return list(self.sim.seed_inbound(n, dnis=SEED_LINES[self.name], size=size))

    @property
    def keeps(self) -> bool:
        """Whether the provider keeps every fax (iFax): nothing is ever released."""
        return RELEASE_OPERATION[self.name] is None


def sim_faxes(sim: Any) -> list[Any]:
    """Every fax a simulator holds (FAXAGE and VoIP.ms keep a dict, iFax a list)."""
    faxes = sim.faxes
    return list(faxes.values()) if isinstance(faxes, dict) else list(faxes)


def operations(sim: Any) -> list[str]:
    """The operation of every request a simulator received, in order."""
    return [r.operation if hasattr(r, "operation") else r[0] for r in list(sim.requests)]


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXD_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "faxd", "run", "--config", str(config), "--once"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_for_requests(sim: Any, seen: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the child has made a request beyond ``seen`` (it is at work) or has exited."""
    deadline = time.monotonic() + 20
    while len(sim.requests) <= seen and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def kill_while_draining(
    config: Path,
    log: Path,
    sim: Any,
    finished: Callable[[], bool],
    rng: Any,
    *,
    kills: int,
) -> tuple[int, int]:
    """Start ``faxd run --once`` until ``finished()``, SIGKILLing the first ``kills`` runs
    at a random moment once each is at work; (kills that landed, runs)."""
    landed = runs = 0
    while not finished() and runs < 200:
        runs += 1
        seen = len(sim.requests)
        proc = start_daemon(config, log)
        if landed < kills:
            wait_for_requests(sim, seen, proc)
            time.sleep(rng.uniform(0.0, 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                landed += 1
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"daemon run {runs} hung; see {log}") from None
    return landed, runs


def rounds_until(pipe: Any, clock: ManualClock, finished: Callable[[], bool]) -> int:
    """Poll (and sweep every fifth round) until ``finished()``, at most 80 rounds, moving
    ``clock`` past the longest backoff each round; the rounds it took."""
    rounds = 0
    while not finished() and rounds < 80:
        pipe.poll()
        if rounds % 5 == 4:
            pipe.sweep()
        clock.advance(61)  # past the longest backoff, without sleeping
        rounds += 1
    return rounds


def delivered_files(root: Path) -> Counter[str]:
    """The sha256 of every file delivered under ``root`` (temporary dot files aside)."""
    return Counter(
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def wanted_files(faxes: Sequence[Any]) -> Counter[str]:
    """The sha256 of each simulator fax's bytes: what :func:`delivered_files` must equal."""
    return Counter(hashlib.sha256(f.data).hexdigest() for f in faxes)


def write_config(path: Path, body: str) -> Path:
    """Write a config file readable only by its owner (it may hold a password)."""
    path.write_text(body)
    os.chmod(path, 0o600)
    return path


def config_file(tmp_path: Path, sim: Any, inbound: str) -> Path:
    """A real config file: ``sim``'s login (the simulator, or any FaxageSettings), the
    ``[inbound]`` lines given, one default route into a folder, no outbound."""
    return write_config(
        tmp_path / "faxd.toml",
        f"""
[faxage]
username = "{sim.username}"
company = "{sim.company}"
password = "{sim.password}"
base_url = "{sim.base_url}"

[database]
url = "sqlite:///{tmp_path / "faxd.db"}"

[inbound]
spool_dir = "{tmp_path / "spool"}"
{inbound}

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{tmp_path / "fax"}/{{recvid}}.{{ext}}" }}]

[outbound]
enabled = false
""",
    )


def events(
    captured: Sequence[MutableMapping[str, Any]], name: str
) -> list[MutableMapping[str, Any]]:
    """The captured log entries with event ``name``."""
    return [entry for entry in captured if entry.get("event") == name]


def fail_transient(message: str = "disk on fire") -> DeliveryError:
    return DeliveryError(message, transient=True)


def fail_permanent(message: str = "target holds other bytes") -> DeliveryError:
    return DeliveryError(message, transient=False)


__all__ = [
    "DOWNLOAD_OPERATION",
    "FAKE_FAXAGE",
    "LINE_FOLDERS",
    "MAIN",
    "PDF",
    "RELEASE_OPERATION",
    "SALES",
    "SEED_LINES",
    "SUPPORT",
    "ActionBook",
    "FakeInbox",
    "FaxdError",
    "FixedRandom",
    "ManualClock",
    "Receiver",
    "RecordingAction",
    "delivered_files",
    "events",
    "expected_path",
    "fail_permanent",
    "fail_transient",
    "faxage_inbound",
    "kill_while_draining",
    "make_config",
    "office_routes",
    "operations",
    "provider_config_file",
    "provider_path",
    "provider_require_delivered",
    "provider_routes",
    "recorder_route",
    "require_delivered",
    "rounds_until",
    "sim_faxes",
    "sim_settings",
    "start_daemon",
    "wait_for_requests",
    "wanted_files",
    "write_config",
]


def commit_levels(db: Any) -> list[int]:
    """The ``synchronous`` level of each later commit of ``db`` (2 FULL, 1 NORMAL).

    Read on the committing connection just before its COMMIT runs, i.e. the
    level that COMMIT is made at.
    """
    levels: list[int] = []

    @event.listens_for(db.engine, "commit")
    def _record(connection: Connection) -> None:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        levels.append(cursor.execute("PRAGMA synchronous").fetchone()[0])

    return levels
