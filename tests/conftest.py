"""Fixtures shared by the whole suite: real servers on loopback and a real database.

- ``sim``: the FAXAGE simulator (a real HTTP server on 127.0.0.1, random port).
- ``client``: a :class:`faxd.providers.faxage.client.FaxageClient` pointed at ``sim``, with short
  timeouts and no sleeping between retries.
- ``smtp_server``: an aiosmtpd server on loopback that keeps every message it accepts.
- ``other_mount``: a folder on another file system than the test's temp folder (/dev/shm).
- ``db``: a SQLite file in a temp dir, migrated to head with Alembic; a test marked
  ``@pg_helper.ON_BOTH`` runs once with it and once with ``pg_db``.
- ``pg_admin`` / ``pg_url``: a real PostgreSQL server (``FAXD_TEST_PG_URL``, or a
  private cluster this session starts) and a fresh, empty database in it per
  test; skipped with the reason when there is none, unless
  ``FAXD_TEST_REQUIRE_PG=1`` (as in .ci/run) makes that a failure.
- ``pg_db``: a :class:`~faxd.store.db.Database` on ``pg_url``, migrated to head.

Fixtures that only one area needs live in that area's ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from faxd.redact import forget_secrets

SIM_USER = "acme"
SIM_COMPANY = "12345"
SIM_PASSWORD = "s3cr3t-Pa55word-x9"


@pytest.fixture(autouse=True)
def _no_leftover_secrets() -> Iterator[None]:
    yield
    forget_secrets()


@pytest.fixture
def sim() -> Iterator[Any]:
    from faxd.sim import FaxageSimulator

    with FaxageSimulator(SIM_USER, SIM_COMPANY, SIM_PASSWORD) as server:
        yield server


@pytest.fixture
def client(sim: Any) -> Iterator[Any]:
    from faxd.providers.faxage.client import FaxageClient

    c = FaxageClient(
        SIM_USER,
        SIM_COMPANY,
        SIM_PASSWORD,
        base_url=sim.base_url,
        timeout=2.0,
        retries=3,
        backoff=0.0,
        sleep=lambda _s: None,
    )
    try:
        yield c
    finally:
        c.close()


@dataclass
class SmtpCapture:
    """What the loopback SMTP server received."""

    host: str
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    controller: Any = None
    #: Seconds the server takes over each message before it answers (a slow server).
    data_delay: float = 0.0
    #: Set when a message's data has arrived (before the delay and the answer).
    receiving: threading.Event = field(default_factory=threading.Event)
    #: Set once a message is kept, just before the server answers 250.
    accepted: threading.Event = field(default_factory=threading.Event)

    def parsed(self) -> list[Message]:
        return [message_from_bytes(raw) for _from, _to, raw in self.messages]

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        capture = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                capture.receiving.set()
                await asyncio.sleep(capture.data_delay)  # a client gone meanwhile cancels this
                capture.messages.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
                )
                capture.accepted.set()
                return f"250 2.0.0 Ok: queued as FAXD{len(capture.messages)}"

        self.controller = Controller(Handler(), hostname=self.host, port=self.port)
        self.controller.start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpCapture]:
    capture = SmtpCapture("127.0.0.1", free_port())
    capture.start()
    try:
        yield capture
    finally:
        capture.stop()


@pytest.fixture
def other_mount(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system (tmpfs) than ``tmp_path``, where os.rename fails."""
    import os
    import shutil
    import time

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a different file system from the temp dir")
    folder = shm / f"faxd-test-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def db(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if getattr(request, "param", "sqlite") == "postgresql":  # see pg_helper.ON_BOTH
        yield request.getfixturevalue("pg_db")
        return
    from faxd.store.db import Database

    database = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    database.upgrade()
    yield database
    database.engine.dispose()


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Any]:
    """A PostgreSQL superuser's URL (``sqlalchemy.engine.URL``) for this session."""
    import os

    import pg_helper

    given = os.environ.get(pg_helper.URL_ENV)
    if given:
        yield pg_helper.server_url(given)
        return
    reason = pg_helper.unavailable_reason()
    if reason is not None:
        if os.environ.get(pg_helper.REQUIRE_ENV) == "1":
            pytest.fail(f"{pg_helper.REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    cluster = pg_helper.PrivateCluster(free_port()).start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_admin: Any) -> Iterator[Any]:
    """A fresh, empty PostgreSQL database (its URL), dropped after the test."""
    import pg_helper

    url = pg_helper.create_database(pg_admin)
    try:
        yield url
    finally:
        pg_helper.drop_database(pg_admin, url)


@pytest.fixture
def pg_db(pg_url: Any) -> Iterator[Any]:
    from faxd.store.db import Database

    database = Database(pg_url.render_as_string(hide_password=False))
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def office_group() -> tuple[str, int]:
    """A group this process may give files to (name, gid): another than its own when it
    can (as root), else its own; for folder actions with ``group``."""
    import grp
    import os

    if os.geteuid() == 0:
        for name in ("daemon", "nogroup", "users"):
            try:
                return name, grp.getgrnam(name).gr_gid
            except KeyError:
                continue
    gids = [g for g in os.getgroups() if g != os.getegid()] or [os.getegid()]
    return grp.getgrgid(gids[0]).gr_name, gids[0]
