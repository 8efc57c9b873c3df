"""End to end: FAXAGE's status columns as it really writes them, through `faxd run --once`.

The simulator answers ``status`` in the 2014 document's order (pagecount, csid,
login, xmitpages) with remote station ids of letters, of digits and none; in
the older 2009 reading (pagecount last); and with a column FAXAGE added on
every listfax and status line.  Every job must end in sent/ or failed/, none
may be posted twice, and ``faxd jobs --json`` must show what FAXAGE reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_outbound_crash import faxd_jobs_json, run_faxd_once, write_config

from faxd.outbound.service import list_jobs
from faxd.sim.documents import make_pdf
from faxd.store.db import Database

FAIL_NUMBER = "3035550110"
#: (file dropped in the outbox, pages FAXAGE counts, the remote station's CSID)
DROPS = [
    ("3035550101 - Letters.pdf", 3, "ACME FAX 01"),
    ("3035550102 - Digits.pdf", 2, "3035550102"),
    ("3035550103 - Nothing.pdf", 1, ""),
    ("3035550104 - chart.png", 1, "PNG DESK"),
    ("3035550105 - deck.pptx", 1, "PPTX DESK"),
    (f"{FAIL_NUMBER} - Busy.pdf", 2, ""),
]


def drop_all(folders: Any, sim: Any) -> dict[str, bytes]:
    """Write every file of DROPS into the outbox; tell the simulator each station's CSID."""
    written: dict[str, bytes] = {}
    for name, pages, csid in DROPS:
        faxno = name[:10]
        sim.remote_csids[faxno] = csid
        if name.endswith(".pdf"):
            data = make_pdf(f"to {faxno}", pages)
        else:
            data = f"a {name} document".encode()
        (folders.hot / name).write_bytes(data)
        written[name] = data
    sim.fail_numbers.add(FAIL_NUMBER)
    sim.job_seconds = 0.0
    return written


def run_until_finished(config: Path, db_path: Path, jobs: int) -> str:
    """`faxd run --once` until every job is sent or failed (at most 4 passes); the logs."""
    logs = ""
    db = Database(f"sqlite:///{db_path}")
    try:
        for _ in range(4):
            run = run_faxd_once(config)
            output = run.communicate(timeout=60)[0].decode(errors="replace")
            logs += output
            assert run.returncode == 0, output
            states = [job.state for job in list_jobs(db)]
            if len(states) == jobs and set(states) <= {"sent", "failed"}:
                return logs
        raise AssertionError(f"jobs not finished after 4 passes: {states}\n{logs}")
    finally:
        db.engine.dispose()


def assert_each_file_filed_once(folders: Any, sim: Any, written: dict[str, bytes]) -> None:
    """Every dropped file is in sent/ (or failed/ for FAIL_NUMBER), posted exactly once."""
    assert sim.sendfax_posts == len(DROPS)
    assert sorted(job.faxno for job in sim.jobs.values()) == sorted(n[:10] for n, *_ in DROPS)
    for name, data in written.items():
        folder = folders.failed if name.startswith(FAIL_NUMBER) else folders.sent
        assert (folder / name).read_bytes() == data
    assert [p for p in folders.hot.rglob("*") if p.is_file()] == []


def test_status_in_2014_order_finishes_every_job_with_its_pages_and_csid(
    tmp_path: Path, folders: Any, sim: Any
) -> None:
    """Letters, digits or no CSID: each job is filed, with pages, xmitpages and CSID right."""
    assert sim.status_order == "2014"
    config = write_config(tmp_path, folders, sim)
    written = drop_all(folders, sim)
    run_until_finished(config, tmp_path / "faxd.db", len(DROPS))
    assert_each_file_filed_once(folders, sim, written)
    shown = {row["file"]: row for row in faxd_jobs_json(config)}
    for name, pages, csid in DROPS:
        row = shown[name]
        if name.startswith(FAIL_NUMBER):
            assert (row["state"], row["pages"], row["xmitpages"]) == ("failed", pages, 0), row
        else:
            assert (row["state"], row["pages"], row["xmitpages"]) == ("sent", pages, pages), row
            assert row["csid"] == (csid or None), row


def test_status_in_2009_reading_loses_no_job(tmp_path: Path, folders: Any, sim: Any) -> None:
    """Answered the older way (pagecount last), every job still ends filed, none resent."""
    sim.status_order = "2009"
    config = write_config(tmp_path, folders, sim)
    written = drop_all(folders, sim)
    logs = run_until_finished(config, tmp_path / "faxd.db", len(DROPS))
    assert_each_file_filed_once(folders, sim, written)
    states = {row["file"]: row["state"] for row in faxd_jobs_json(config)}
    assert states == {n: "failed" if n.startswith(FAIL_NUMBER) else "sent" for n, *_ in DROPS}
    assert "faxage.value_unknown" in logs  # a CSID read as a page count is reported
    db = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    try:
        assert [job.resends for job in list_jobs(db)] == [0] * len(DROPS)
    finally:
        db.engine.dispose()


def test_extra_column_on_every_line_is_processed_completely(
    tmp_path: Path, folders: Any, sim: Any
) -> None:
    """A column added to every listfax and status line: faxes delivered and deleted, jobs filed."""
    sim.extra_columns = 1
    faxes = sim.seed_inbound(3)
    config = write_config(tmp_path, folders, sim)
    text = config.read_text().replace("[inbound]\nenabled = false", "[inbound]\nenabled = true")
    config.write_text(text)
    written = drop_all(folders, sim)
    logs = run_until_finished(config, tmp_path / "faxd.db", len(DROPS))
    assert_each_file_filed_once(folders, sim, written)
    delivered = sorted(p.name for p in (tmp_path / "inbox").iterdir())
    assert delivered == sorted(f"{fax.recvid}.pdf" for fax in faxes)
    assert all(fax.deleted for fax in faxes)
    inbox = subprocess.run(
        [sys.executable, "-m", "faxd", "inbox", "--config", str(config), "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert [row["state"] for row in json.loads(inbox.stdout)] == ["done"] * 3
    for operation, fields, expected in (("listfax", 8, 7), ("status", 13, 12)):
        notice = (
            f"FAXAGE added a column to {operation}: {fields} fields, "
            f"expected {expected}; extra ignored"
        )
        assert logs.count(notice) >= 1, logs
    assert "line_unreadable" not in logs and "line_skipped" not in logs


def test_insane_listfax_numbers_stop_only_their_lines(
    tmp_path: Path, folders: Any, sim: Any
) -> None:
    """A 2^63 recvid and a million-page fax are reported; inbound goes on around them."""
    good = sim.add_fax("3035550101")
    huge = sim.add_fax("3035550101")
    del sim.faxes[huge.recvid]
    huge.recvid = 2**63
    sim.faxes[huge.recvid] = huge
    endless = sim.add_fax("3035550101", data=b"%PDF-1.4 claims a million pages")
    endless.pagecount = 1_000_000
    config = write_config(tmp_path, folders, sim)
    config.write_text(
        config.read_text().replace("[inbound]\nenabled = false", "[inbound]\nenabled = true")
    )

    first = run_faxd_once(config)
    logs = first.communicate(timeout=60)[0].decode(errors="replace")
    assert "OverflowError" not in logs
    assert f"recvid '{2**63}' is larger than" in logs
    assert "pagecount '1000000' is larger than 10000" in logs
    later = sim.add_fax("3035550101")  # the cursor still moves: a later fax is taken
    second = run_faxd_once(config)
    logs += second.communicate(timeout=60)[0].decode(errors="replace")
    delivered = sorted(p.name for p in (tmp_path / "inbox").iterdir())
    assert delivered == [f"{good.recvid}.pdf", f"{later.recvid}.pdf"], logs
    assert good.deleted and later.deleted
    assert not huge.deleted and not endless.deleted
