"""Two (or more) real ``faxd run`` processes sharing one PostgreSQL database (issue 14).

The system tests of "Several instances" (DESIGN.md) and ``bench/instances.py``
need the same office: one FAXAGE simulator, one PostgreSQL database, one
route folder and one hot folder that every instance shares (as a network
share would be), and per instance what stays on its own machine: its spool
folders and its ``[database] instance`` name.  :class:`Office` writes each
instance's config; :class:`Instance` starts ``python -m faxd run`` as a child
(its log in a file), knows when it said ``READY=1`` on a private notify
socket, and kills it with SIGKILL or stops it with SIGTERM.

Nothing here sleeps for a fixed time and then asserts: :func:`wait_until`
polls a condition (the database, the simulator, the folders) until it holds,
with a deadline generous enough for a loaded machine, and fails with what was
last seen and the tail of every instance's log.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

from faxd.sim.kits import KITS

#: The fax number every drop of :meth:`Office.drop` is named for starts here (one number each).
FIRST_FAXNO = 3035552000
#: Where an instance moves the hot-folder files it claims: ``<hot>/.faxd-claims/<instance>/``.
CLAIMS_FOLDER = ".faxd-claims"
#: The role lease of the FAXAGE account's listing (CLAIMS.md: ``list:<provider>:<account>``).
LIST_ROLE_PREFIX = "list:faxage:"


def utc_now() -> datetime:
    """Now in UTC without a zone, as faxd's UTCDateTime columns hold it."""
    return datetime.now(UTC).replace(tzinfo=None)


def child_env() -> dict[str, str]:
    """The environment of a faxd child: none of the caller's FAXD_* overrides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FAXD_")}


@dataclass
class Office:
    """What the instances share (simulator, database, folders) and how each is configured."""

    work: Path
    sim: Any
    db_url: URL
    lease_seconds: float = 6.0
    poll_interval: float = 1.0
    concurrency: int = 2
    inbound: bool = True
    outbound: bool = False
    sweep_interval: float = 3600.0
    rescan_interval: float = 5.0
    instances: list[Instance] = field(default_factory=list)

    def __post_init__(self) -> None:
        for folder in (self.fax_root, self.hot, self.sent, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        self._engine: Engine | None = None

    # -- the shared folders --------------------------------------------------------------

    @property
    def fax_root(self) -> Path:
        """The route's folder: every instance delivers here (``<recvid>.pdf``)."""
        return self.work / "share" / "fax"

    @property
    def hot(self) -> Path:
        return self.work / "share" / "outbox"

    @property
    def sent(self) -> Path:
        return self.work / "share" / "sent"

    @property
    def failed(self) -> Path:
        return self.work / "share" / "failed"

    def fax_path(self, fax: Any) -> Path:
        """Where the route puts a simulator fax."""
        return self.fax_root / f"{fax.recvid}.pdf"

    # -- instances -----------------------------------------------------------------------

    def instance(self, name: str) -> Instance:
        """A new (not yet started) instance named ``name``, its config written."""
        home = self.work / name
        home.mkdir(parents=True, exist_ok=True)
        config = home / "faxd.toml"
        config.write_text(self.config_text(name, home))
        config.chmod(0o600)  # it holds the FAXAGE password
        made = Instance(name, config, home / "faxd.log")
        self.instances.append(made)
        return made

    def config_text(self, name: str, home: Path) -> str:
        """One instance's faxd.toml: shared database and folders, its own spools and name."""
        url = self.db_url.render_as_string(hide_password=False)
        outbound = "enabled = false\n"
        if self.outbound:
            outbound = (
                f'hot_folder = "{self.hot}"\nsent_folder = "{self.sent}"\n'
                f'failed_folder = "{self.failed}"\nspool_dir = "{home / "outspool"}"\n'
                "settle_seconds = 0.3\npoll_seconds = 0.5\n"
                f"rescan_interval = {self.rescan_interval:g}\n"
                f"status_interval = {self.poll_interval:g}\n"
            )
        return f"""{KITS["faxage"].section(self.sim, timeout=5)}
[database]
url = "{url}"
instance = "{name}"
lease_seconds = {self.lease_seconds:g}

[inbound]
enabled = {"true" if self.inbound else "false"}
poll_interval = {self.poll_interval:g}
sweep_interval = {self.sweep_interval:g}
spool_dir = "{home / "spool"}"
max_attempts = 50
backoff_base = 0.05
backoff_max = 0.5
concurrency = {self.concurrency}

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{self.fax_root}/{{recvid}}.{{ext}}" }}]

[outbound]
{outbound}"""

    def stop_all(self) -> None:
        """SIGKILL whatever instance is still running (the end of a test, pass or fail)."""
        for instance in self.instances:
            instance.kill()

    def logs(self, lines: int = 25) -> str:
        """The tail of every instance's log, for a failure message."""
        return "\n".join(instance.log_tail(lines) for instance in self.instances)

    # -- the database --------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.db_url, pool_size=2)
        return self._engine

    def rows(self, statement: str, **params: Any) -> list[Any]:
        """The rows of one read-only SQL statement (empty while the tables do not exist)."""
        with self.engine.connect() as connection:
            if not connection.execute(
                text("SELECT to_regclass('inbound_faxes') IS NOT NULL")
            ).scalar():
                return []
            return list(connection.execute(text(statement), params))

    def fax_states(self) -> Counter[str]:
        return Counter(row.state for row in self.rows("SELECT state FROM inbound_faxes"))

    def job_states(self) -> Counter[str]:
        return Counter(row.state for row in self.rows("SELECT state FROM outbound_jobs"))

    def unfinished_jobs(self) -> list[tuple[Any, ...]]:
        """Every job not sent yet: (id, state, instance, lease_until, remote_jobid, last_error)."""
        return [
            tuple(row)
            for row in self.rows(
                "SELECT id, state, instance, lease_until, remote_jobid, last_error "
                "FROM outbound_jobs WHERE state <> 'sent' ORDER BY id"
            )
        ]

    def held_by(self, table: str, name: str) -> dict[str, str]:
        """The rows of ``table`` (remote_id or source_name -> state) ``name`` holds a live
        claim on now."""
        key = "remote_id" if table == "inbound_faxes" else "source_name"
        return {
            row.key: row.state
            for row in self.rows(
                f"SELECT {key} AS key, state FROM {table} "  # noqa: S608 - our own table names
                "WHERE instance = :name AND lease_until > :now",
                name=name,
                now=utc_now(),
            )
        }

    def worked_by(self, table: str) -> dict[str, str | None]:
        """Every row of ``table`` (remote_id or source_name) -> its ``instance`` column."""
        key = "remote_id" if table == "inbound_faxes" else "source_name"
        return {
            row.key: row.instance
            for row in self.rows(f"SELECT {key} AS key, instance FROM {table}")  # noqa: S608
        }

    def fax_row(self, remote_id: str) -> tuple[str, str | None] | None:
        """A fax's (state, instance), or None while it is not recorded."""
        found = self.rows(
            "SELECT state, instance FROM inbound_faxes WHERE remote_id = :id", id=remote_id
        )
        return (found[0].state, found[0].instance) if found else None

    def roles(self) -> list[tuple[Any, ...]]:
        """Every role lease: (role, holder, lease_until)."""
        return [tuple(r) for r in self.rows("SELECT role, holder, lease_until FROM leases")]

    def lister(self) -> str | None:
        """The instance holding the account's listing lease now, if any."""
        found = self.rows(
            "SELECT holder FROM leases WHERE role LIKE :role AND lease_until > :now",
            role=LIST_ROLE_PREFIX + "%",
            now=utc_now(),
        )
        return found[0].holder if found else None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- the simulator -------------------------------------------------------------------

    def requests(self, operation: str) -> list[Any]:
        """The simulator's requests of one operation so far."""
        with self.sim.lock:
            return [r for r in self.sim.requests if r.operation == operation]

    def repeated(self, operation: str) -> set[str]:
        """The faxes (recvid) that more than one request of ``operation`` named."""
        per_fax = Counter(str(r.fields.get("faxid")) for r in self.requests(operation))
        return {faxid for faxid, count in per_fax.items() if count > 1}

    def sent_documents(self) -> Counter[str]:
        """sha256 of every document the simulator received in a sendfax -> how many times."""
        with self.sim.lock:
            jobs = list(self.sim.jobs.values())
        return Counter(hashlib.sha256(data).hexdigest() for job in jobs for _n, data in job.files)

    # -- the hot folder ------------------------------------------------------------------

    def drop(self, number: int, data: bytes, *, claimed_by: str | None = None) -> Path:
        """Drop one document into the hot folder, named for its own fax number; with
        ``claimed_by``, straight into that instance's claim folder (where its rename
        put a file it then died with)."""
        folder = self.hot if claimed_by is None else self.hot / CLAIMS_FOLDER / claimed_by
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{FIRST_FAXNO + number} - drop {number}.pdf"
        temporary = folder / f".{path.name}.part"  # hidden names are left alone
        temporary.write_bytes(data)
        os.rename(temporary, path)
        return path

    def claimed_files(self, name: str) -> list[Path]:
        """The files in instance ``name``'s claim folder of the hot folder."""
        return [p for p in (self.hot / CLAIMS_FOLDER / name).rglob("*") if p.is_file()]

    def in_hand(self, name: str) -> list[str]:
        """What instance ``name`` has begun and not yet handed to the provider: files in its
        claim folder, and jobs it worked on last that are not posted yet."""
        jobs = self.rows(
            "SELECT source_name FROM outbound_jobs WHERE instance = :name "
            "AND state IN ('queued', 'submitting')",
            name=name,
        )
        return [p.name for p in self.claimed_files(name)] + [row.source_name for row in jobs]

    def hot_leftovers(self) -> list[str]:
        """Every file still under the hot folder, claim folders included."""
        return sorted(str(p.relative_to(self.hot)) for p in self.hot.rglob("*") if not p.is_dir())


class Instance:
    """One ``faxd run --config PATH`` child process, started and stopped by the test."""

    def __init__(self, name: str, config: Path, log: Path) -> None:
        self.name = name
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = threading.Event()
        self.starts = 0
        self._sock: socket.socket | None = None

    def __repr__(self) -> str:
        return f"Instance({self.name!r}, running={self.running})"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Instance:
        """Start the daemon (without waiting for it); READY=1 sets :attr:`ready`."""
        assert not self.running, f"{self.name} is already running"
        self._close_socket()
        self.ready.clear()
        address = f"faxd-instances-{uuid.uuid4().hex}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + address)
        self._sock.settimeout(0.2)
        env = {**child_env(), "NOTIFY_SOCKET": "@" + address}
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts} of {self.name} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "faxd", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        threading.Thread(
            target=self._read_notify, args=(self._sock,), name=f"notify-{self.name}", daemon=True
        ).start()
        return self

    def _read_notify(self, sock: socket.socket) -> None:
        while True:
            try:
                message = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if b"READY=1" in message.split(b"\n"):
                self.ready.set()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the daemon said READY=1 (fails if it exited or took longer than ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if not self.running:
                raise AssertionError(f"{self.name} exited before READY=1:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not READY after {timeout} s:\n{self.log_tail()}")

    def kill(self) -> bool:
        """SIGKILL the daemon if it runs; whether it did."""
        if not self.running:
            self._close_socket()
            return False
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._close_socket()
        return True

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for a clean exit; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close_socket()
        return code

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text_lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            text_lines = []
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text_lines[-lines:])


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    office: Office | None = None,
    seen: Callable[[], object] | None = None,
    interval: float = 0.1,
) -> float:
    """Poll ``condition`` until it holds; the seconds it took.  Fails after ``timeout``
    seconds saying ``what`` was awaited, ``seen()`` (the state last seen) and the logs."""
    started = time.monotonic()
    deadline = started + timeout
    while not condition():
        if time.monotonic() > deadline:
            state = f"; last seen: {seen()}" if seen is not None else ""
            logs = f"\n{office.logs()}" if office is not None else ""
            raise AssertionError(f"not within {timeout:g} s: {what}{state}{logs}")
        time.sleep(interval)
    return time.monotonic() - started


@contextmanager
def running_office(office: Office) -> Iterator[Office]:
    """``office``, with every instance killed and the database engine closed afterwards."""
    try:
        yield office
    finally:
        office.stop_all()
        office.close()


def all_faxes_done(office: Office, faxes: list[Any]) -> Callable[[], bool]:
    """A condition: every simulator fax deleted and every row ``done``."""

    def check() -> bool:
        if not all(fax.deleted for fax in faxes):
            return False
        return office.fax_states() == Counter({"done": len(faxes)})

    return check


def misdelivered(office: Office, fax: Any) -> str | None:
    """What is wrong with ``fax``'s file in the route folder (missing, other bytes), or None."""
    path = office.fax_path(fax)
    if not path.exists():
        return f"{path.name} missing"
    if path.read_bytes() != fax.data:
        return f"{path.name} holds other bytes"
    return None


def delivered_once(office: Office, faxes: list[Any]) -> list[str]:
    """What is wrong with the route folder: a fax missing, with other bytes, or a stray file."""
    problems = [problem for fax in faxes if (problem := misdelivered(office, fax))]
    wanted = {office.fax_path(fax) for fax in faxes}
    for path in office.fax_root.rglob("*"):
        if path.is_file() and path not in wanted:
            problems.append(f"stray file {path.relative_to(office.fax_root)}")
    return problems


def delete_after_delivery(office: Office) -> Callable[[Any], str | None]:
    """The simulator's delete_check: the fax's file holds its bytes when delfax comes."""

    def check(fax: Any) -> str | None:
        problem = misdelivered(office, fax)
        return None if problem is None else f"fax {fax.recvid} deleted while {problem}"

    return check
