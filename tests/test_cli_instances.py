"""Which server did what: `faxd inbox`, `jobs` and `status` when several share the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from faxd.cli import main
from faxd.config import load_config
from faxd.demo import DemoLayout, write_config
from faxd.store.claims import Claims, Instance
from faxd.store.db import Database
from faxd.store.models import InboundFax, OutboundJob


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what fixtures printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path, sim: Any) -> Path:
    return write_config(
        DemoLayout(tmp_path / "site"), base_url=sim.base_url, username=sim.username,
        company=sim.company, password=sim.password,
    )  # fmt: skip


@pytest.fixture
def shared(config: Path, sim: Any) -> Database:
    """Faxes and jobs two servers worked on, both registered, one holding the lister role."""
    db = Database(load_config(config).database.url)
    db.upgrade()
    account = f"{sim.username}@{sim.company}"
    with db.session() as session:
        for n, server in enumerate(("fax1", "fax2", "fax1")):
            session.add(InboundFax(
                provider="faxage", account=account, remote_id=str(104729 + n),
                recvdate=datetime(2024, 5, 1 + n, 9, 30), cid="3035550100", dnis="3035550101",
                pagecount=2, state="done", route="sales", instance=server,
            ))  # fmt: skip
            session.add(OutboundJob(
                faxno="+13035551212", source_name=f"quarterly-report-{n}.pdf",
                spool_path="/x", state="sent", remote_jobid=str(9000 + n), instance=server,
            ))  # fmt: skip
    now = datetime.now(UTC)
    one = Claims(db, Instance("fax1", timedelta(seconds=60)), clock=lambda: now)
    two = Claims(db, Instance("fax2", timedelta(seconds=60)), clock=lambda: now)
    one.register()
    two.register()
    assert one.hold(f"list:faxage:{account}")
    return db


def test_inbox_and_jobs_name_the_server_of_each_row_within_80_columns(
    capsys: pytest.CaptureFixture[str], config: Path, shared: Database
) -> None:
    for command in ("inbox", "jobs"):
        code, out, _err = run(capsys, command, "--config", str(config))
        lines = out.rstrip("\n").splitlines()
        assert code == 0
        assert all(len(line) <= 80 for line in lines), out
        assert lines[0].split()[-1] == "BY", out
        assert sum("fax1" in line for line in lines[1:]) == 2, out
        assert sum("fax2" in line for line in lines[1:]) == 1, out


def test_status_lists_the_servers_and_who_lists_the_account(
    capsys: pytest.CaptureFixture[str], config: Path, shared: Database
) -> None:
    code, out, _err = run(capsys, "status", "--config", str(config))
    assert code == 0
    assert "fax1: alive" in out and "fax2: alive" in out
    assert "role" in out and "list:faxage:" in out and ": fax1" in out
