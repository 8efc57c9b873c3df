"""`faxd faxage ...` against the simulator: a bad line in an answer is skipped, not fatal."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from faxd.cli import main
from faxd.demo import DemoLayout, write_config
from faxd.sim.models import SimCdr


@pytest.fixture
def config(tmp_path: Path, sim: Any) -> Path:
    return write_config(
        DemoLayout(tmp_path / "site"),
        base_url=sim.base_url,
        username=sim.username,
        company=sim.company,
        password=sim.password,
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what fixtures printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_getcdr_prints_the_good_records_and_notes_the_skipped_line(
    capsys: pytest.CaptureFixture[str], config: Path, sim: Any
) -> None:
    """A CDR with a negative duration is noted by line number; the other records print."""
    sim.cdrs.append(SimCdr(7001, datetime(2024, 5, 1, 10), "IN", "3035550100", "3035550101", 60))
    sim.cdrs.append(SimCdr(7002, datetime(2024, 5, 1, 11), "IN", "3035550100", "3035550101", -5))
    sim.cdrs.append(SimCdr(7003, datetime(2024, 5, 1, 12), "OUT", "3035550101", "3035550100", 9))
    code, out, err = run(capsys, "faxage", "getcdr", "--nuidgt", "0", "--config", str(config))
    assert code == 0
    assert "7001" in out and "7003" in out and "7002" not in out
    note = (
        "skipped line 2: duration '-5' is negative, not a sane value: "
        "7002,2024-05-01 11:00:00,IN,3035550100,3035550101,-5"
    )
    assert note in err.splitlines()

    code, out, err = run(
        capsys, "faxage", "getcdr", "--nuidgt", "0", "--config", str(config), "--json"
    )
    assert [row["nuid"] for row in json.loads(out)] == [7001, 7003]
    assert note in err.splitlines()


def test_listlines_prints_the_good_numbers_and_notes_the_skipped_line(
    capsys: pytest.CaptureFixture[str], config: Path, sim: Any
) -> None:
    """A number list with one line that is not a number still lists the others."""
    sim.lines.insert(1, "555-CALL-NOW")
    code, out, err = run(capsys, "faxage", "listlines", "--config", str(config))
    assert code == 0
    assert out.split() == [number for number in sim.lines if number != "555-CALL-NOW"]
    assert "skipped line 2: '555-CALL-NOW' is not a phone number: 555-CALL-NOW" in err
