"""The operator's command line against a seeded database and the simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from faxd.cli import main
from faxd.demo import DemoLayout, write_config
from faxd.sim.documents import make_pdf
from faxd.store.db import Database
from faxd.store.models import InboundFax, OutboundJob

LONG_ERROR = (
    "getfax: FAXAGE answered ERR13 (the fax could not be retrieved) eleven times in a row; "
    "faxd gave up and kept the fax on FAXAGE: run faxd retry 104730 once FAXAGE is healthy"
)


@pytest.fixture
def layout(tmp_path: Path) -> DemoLayout:
    return DemoLayout(tmp_path / "site")


@pytest.fixture
def config(layout: DemoLayout, sim: Any) -> Path:
    return write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password,
    )


@pytest.fixture
def seeded(config: Path, sim: Any) -> Iterator[Database]:
    """Three faxes (done, failed, listed) and two jobs (sent, failed) for the sim account."""
    from faxd.config import load_config

    db = Database(load_config(config).database.url)
    db.upgrade()
    account = f"{sim.username}@{sim.company}"
    with db.session() as session:
        for recvid, state, day, error in (
            (104729, "done", 1, None),
            (104730, "failed", 2, LONG_ERROR),
            (104731, "listed", 3, None),
        ):
            session.add(InboundFax(
                provider="faxage", account=account, remote_id=str(recvid),
                recvdate=datetime(2024, 5, day, 9, 30),
                cid="3035550100", dnis="3035550101", pagecount=2, state=state,
                route="sales" if state == "done" else None, last_error=error, attempts=3,
            ))
        session.add(OutboundJob(
            state="sent", faxno="3035551212", source_name="quote.pdf", spool_path="/nowhere",
            remote_jobid="5271001", pages=2, created_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        ))
        session.add(OutboundJob(
            state="failed", faxno="3035551313", source_name="a-very-long-name-for-a-file"
            "-that-someone-dropped-in-the-outbox-folder.pdf", spool_path="/nowhere",
            last_error="FAXAGE reported: busy (no answer after 3 tries)",
        ))
    yield db
    db.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what fixtures printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_imports_no_heavy_library() -> None:
    """`faxd --help` loads none of SQLAlchemy, requests, structlog, APScheduler, watchdog."""
    probe = (
        "import sys\nfrom faxd.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "heavy = {'sqlalchemy', 'requests', 'structlog', 'apscheduler', 'watchdog', 'alembic'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=30)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_python_dash_m_faxd_runs_the_cli() -> None:
    """`python -m faxd --version` is the same command as the `faxd` script."""
    done = subprocess.run([sys.executable, "-m", "faxd", "--version"], capture_output=True,
                          text=True, check=False, timeout=30)
    assert (done.returncode, done.stdout.split()[0]) == (0, "faxd")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`faxd` alone prints the help on stderr and exits 2."""
    code, _out, err = run(capsys)
    assert code == 2 and "COMMAND" in err


def test_check_config_ok(capsys: pytest.CaptureFixture[str], config: Path, sim: Any) -> None:
    """check-config prints what the config means, never the password, and exits 0."""
    code, out, _err = run(capsys, "check-config", "--config", str(config))
    assert code == 0
    assert "sales" in out and "front-desk" in out
    assert sim.password not in out


def test_check_config_bad_exits_2(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    """A config with an unknown key exits 2 with one line per problem naming the key."""
    config.write_text(config.read_text().replace("[inbound]", "[inbound]\npoll_intervall = 5"))
    code, out, err = run(capsys, "check-config", "--config", str(config))
    assert (code, out) == (2, "")
    assert "poll_intervall" in err and "Traceback" not in err
    assert all(line.startswith("faxd: ") for line in err.strip().splitlines())


def test_missing_config_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A config file that does not exist is a usage error naming the path."""
    code, _out, err = run(capsys, "inbox", "--config", str(tmp_path / "nope.toml"))
    assert code == 2 and "nope.toml" in err and "not found" in err


def test_db_upgrade_reports_revisions(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    """`faxd db upgrade` migrates a new database, then says it is already current."""
    code, out, _err = run(capsys, "db", "upgrade", "--config", str(config))
    assert code == 0 and out.startswith("database upgraded from empty to ")
    code, out, _err = run(capsys, "db", "upgrade", "--config", str(config))
    assert code == 0 and out.startswith("database already at revision ")


def test_inbox_table_fits_80_columns(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database
) -> None:
    """inbox lists newest first within 80 columns, a fax's last error on the line under it."""
    code, out, _err = run(capsys, "inbox", "--config", str(config))
    lines = out.rstrip("\n").splitlines()
    assert code == 0
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split() == [
        "PROVIDER", "ID", "RECEIVED", "FROM", "TO", "PG", "ROUTE", "STATE",
    ]  # fmt: skip
    assert [line.split()[:2] for line in lines[1:] if not line.startswith(" ")] == [
        ["faxage", "104731"], ["faxage", "104730"], ["faxage", "104729"]
    ]  # fmt: skip
    failed_at = next(i for i, line in enumerate(lines) if line.split()[1:2] == ["104730"])
    assert lines[failed_at + 1].startswith("    ! getfax: FAXAGE answered ERR13")


def test_inbox_filters_and_json(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database
) -> None:
    """--failed and --since narrow the list; --json gives every column for scripts."""
    code, out, _err = run(capsys, "inbox", "--config", str(config), "--failed", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [(r["provider"], r["remote_id"], r["state"], r["last_error"]) for r in rows] == [
        ("faxage", "104730", "failed", LONG_ERROR)
    ]
    assert rows[0]["received"] == "2024-05-02T09:30:00"
    assert set(rows[0]) >= {
        "provider", "remote_id", "received", "cid", "dnis", "pages", "route", "state",
    }  # fmt: skip
    code, out, _err = run(capsys, "inbox", "--config", str(config), "--since", "2024-05-02",
                          "--json")
    assert [r["remote_id"] for r in json.loads(out)] == ["104731", "104730"]


def test_inbox_bad_date_is_usage_error(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """--since with something that is not a date exits 2 and shows how to write one."""
    with pytest.raises(SystemExit) as exited:
        main(["inbox", "--config", str(config), "--since", "yesterday"])
    assert exited.value.code == 2
    assert "2024-05-01" in capsys.readouterr().err


def test_jobs_table_and_json(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database
) -> None:
    """jobs fits 80 columns (long file names shortened); --state and --json select and expose."""
    code, out, _err = run(capsys, "jobs", "--config", str(config))
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines())
    assert "    ! FAXAGE reported: busy" in out
    code, out, _err = run(capsys, "jobs", "--config", str(config), "--state", "sent", "--json")
    assert [
        (j["id"], j["faxno"], j["provider"], j["remote_jobid"]) for j in json.loads(out)
    ] == [(1, "3035551212", "faxage", "5271001")]


def test_jobs_unknown_state_exits_2(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database
) -> None:
    """An unknown --state names the states there are and exits 2."""
    code, _out, err = run(capsys, "jobs", "--config", str(config), "--state", "lost")
    assert code == 2 and "queued" in err


def test_send_cancel_retry_cycle(
    capsys: pytest.CaptureFixture[str], config: Path, layout: DemoLayout, tmp_path: Path
) -> None:
    """send queues a job, cancel moves it to failed/, retry --job queues it again."""
    document = tmp_path / "quote.pdf"
    document.write_bytes(make_pdf("quote"))
    code, _out, err = run(capsys, "send", str(document), "--to", "3035551212",
                          "--config", str(config))
    assert code == 1 and "run `faxd db upgrade`" in err
    assert run(capsys, "db", "upgrade", "--config", str(config))[0] == 0
    code, out, _err = run(capsys, "send", str(document), "--to", "(303) 555-1212",
                          "--config", str(config))
    assert (code, out) == (0, "job 1: quote.pdf -> (303) 555-1212 queued\n")
    code, out, _err = run(capsys, "cancel", "1", "--config", str(config))
    assert code == 0 and out.startswith("job 1 cancelled")
    assert any(layout.failed.iterdir())
    code, out, _err = run(capsys, "retry", "--job", "1", "--config", str(config))
    assert code == 0 and out.startswith("job 1 queued again")
    code, out, _err = run(capsys, "jobs", "--config", str(config), "--json")
    assert [j["state"] for j in json.loads(out)] == ["queued"]


def test_send_bad_number_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database, tmp_path: Path
) -> None:
    """A number that is not 10 digits is a usage error (exit 2) with a hint, no traceback."""
    document = tmp_path / "quote.pdf"
    document.write_bytes(make_pdf("quote"))
    code, _out, err = run(capsys, "send", str(document), "--to", "555-12", "--config", str(config))
    assert code == 2
    assert "--to" in err and "10-digit" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_send_to_international_and_national_numbers(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database, tmp_path: Path
) -> None:
    """--to takes +49 and 0049 forms, and national numbers of [outbound] country; stored E.164."""
    document = tmp_path / "rechnung.pdf"
    document.write_bytes(make_pdf("rechnung"))
    code, out, _err = run(capsys, "send", str(document), "--to", "0049 30 1234567",
                          "--config", str(config))  # fmt: skip
    assert (code, out) == (0, "job 3: rechnung.pdf -> +49 30 1234567 queued\n")
    code, _out, err = run(capsys, "send", str(document), "--to", "030 123456",
                          "--config", str(config))  # fmt: skip
    assert code == 2 and "10-digit" in err  # read in the US: 9 digits
    german = config.with_name("german.toml")
    german.write_text(config.read_text().replace("[outbound]", '[outbound]\ncountry = "DE"'))
    german.chmod(0o600)  # it holds the password
    code, out, _err = run(capsys, "send", str(document), "--to", "030 123456",
                          "--config", str(german))  # fmt: skip
    assert (code, out, _err) == (0, "job 4: rechnung.pdf -> +49 30 123456 queued\n", "")
    with seeded.session() as session:
        numbers = [job.faxno for job in session.query(OutboundJob).order_by(OutboundJob.id)]
    assert numbers[2:] == ["+49301234567", "+4930123456"]


def test_retry_failed_fax(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database
) -> None:
    """retry RECVID sends a failed fax back to work; an unknown recvid is one line, exit 1."""
    code, out, _err = run(capsys, "retry", "104730", "--config", str(config))
    assert code == 0 and out.startswith("faxage fax 104730 is listed again")
    with seeded.session() as session:
        from sqlalchemy import select

        fax = session.scalars(select(InboundFax).where(InboundFax.remote_id == "104730")).one()
        assert (fax.state, fax.attempts) == ("listed", 0)
    code, _out, err = run(capsys, "retry", "999", "--config", str(config))
    assert code == 1 and err.count("\n") == 1 and "999" in err


def test_status_text_and_json(
    capsys: pytest.CaptureFixture[str], config: Path, seeded: Database
) -> None:
    """status shows counts by state and pending jobs, as text and as JSON."""
    code, out, _err = run(capsys, "status", "--config", str(config), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["inbound"]["faxes"] == {"done": 1, "failed": 1, "listed": 1}
    assert report["outbound"]["jobs"] == {"failed": 1, "sent": 1}
    assert report["outbound"]["pending"] == 0
    assert report["schema"]["current"] == report["schema"]["newest"]
    code, out, _err = run(capsys, "status", "--config", str(config))
    assert code == 0 and "1 done, 1 failed, 1 listed" in out and "last poll   never" in out


def test_faxage_account_operations(
    capsys: pytest.CaptureFixture[str], config: Path, sim: Any
) -> None:
    """faxage listlines/portable/disabledid talk to FAXAGE and print plainly or as JSON."""
    code, out, _err = run(capsys, "faxage", "listlines", "--config", str(config), "--json")
    assert code == 0 and json.loads(out) == ["3035550101", "3035550102", "3035550103"]
    code, out, _err = run(capsys, "faxage", "disabledid", "3035550102", "--config", str(config))
    assert (code, out) == (0, "(303) 555-0102 disabled\n")
    code, out, _err = run(capsys, "faxage", "portable", "3035550199", "--config", str(config),
                          "--json")
    assert code == 0 and set(json.loads(out)) == {"number", "portable"}
    assert all(r.operation != "" for r in sim.requests)


def test_faxage_unreachable_exits_1_without_secret(
    capsys: pytest.CaptureFixture[str], layout: DemoLayout
) -> None:
    """FAXAGE unreachable: exit 1, one last line saying so, password nowhere in the output."""
    config = write_config(layout, base_url="http://127.0.0.1:9", password="Zq-unique-pw-771")
    code, out, err = run(capsys, "faxage", "listlines", "--config", str(config))
    assert (code, out) == (1, "")
    assert err.strip().splitlines()[-1].startswith("faxd: listlines: ")
    assert "Zq-unique-pw-771" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [("faxage", "disabledid", "555"), ("faxage", "getcdr", "--did", "12"),
     ("inbox", "--limit", "-5")],
)
def test_bad_arguments_are_usage_errors(
    capsys: pytest.CaptureFixture[str], config: Path, argv: tuple[str, ...]
) -> None:
    """A malformed number or count on the command line exits 2 before anything is done."""
    with pytest.raises(SystemExit) as exited:
        run(capsys, *argv, "--config", str(config))
    assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_getcdr_without_a_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], config: Path, sim: Any
) -> None:
    """getcdr needs --begin and --end or --nuidgt: exit 2, and FAXAGE is not asked."""
    code, out, err = run(capsys, "faxage", "getcdr", "--config", str(config))
    assert (code, out) == (2, "")
    assert "--begin and --end, or --nuidgt" in err
    assert not any(r.operation == "getcdr" for r in sim.requests)
    code, out, _err = run(capsys, "faxage", "getcdr", "--nuidgt", "0", "--config", str(config),
                          "--json")
    assert code == 0 and isinstance(json.loads(out), list)


def test_unexpected_error_is_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], layout: DemoLayout, tmp_path: Path
) -> None:
    """A database that cannot be opened (a folder in its place): exit 1, one line, no secret."""
    config = write_config(layout, base_url="http://127.0.0.1:9", password="Zq-unique-pw-772")
    (tmp_path / "not-a-db").mkdir()
    config.write_text(config.read_text().replace(
        f"sqlite:///{layout.root / 'state' / 'faxd.db'}", f"sqlite:///{tmp_path / 'not-a-db'}"
    ))
    code, out, err = run(capsys, "inbox", "--config", str(config))
    assert (code, out) == (1, "")
    assert err.startswith("faxd: unexpected OperationalError: ") and err.count("\n") == 1
    assert "Traceback" not in err and "Zq-unique-pw-772" not in err


def test_status_with_only_a_sending_provider(
    capsys: pytest.CaptureFixture[str], layout: DemoLayout
) -> None:
    """With faxnummer.de alone nothing is polled: status shows the outbox, not a crash."""
    section = (
        '[faxnummer]\nproduct_login = "acc1"\nproduct_code = "code-1"\n'
        'status_email = "fax@example.com"\nbase_url = "http://127.0.0.1:9/"\n'
    )
    config = write_config(layout, base_url=None, sections=section, extra_inbound="enabled = false")
    from faxd.config import load_config

    db = Database(load_config(config).database.url)
    db.upgrade()
    db.dispose()
    code, out, err = run(capsys, "status", "--config", str(config))
    assert (code, err) == (0, "")
    lines = [line.split() for line in out.splitlines()]
    assert ["inbound", "disabled"] in lines and ["jobs", "none"] in lines
    assert "last poll" not in out
    code, out, err = run(capsys, "status", "--config", str(config), "--json")
    assert code == 0
    assert json.loads(out)["inbound"]["providers"] == []
