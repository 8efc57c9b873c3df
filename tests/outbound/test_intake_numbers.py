"""International and national numbers in dropped file names and `faxd send`, stored as E.164.

Real files in a real hot folder, the real database and the FAXAGE simulator:
the number a name gives is stored in E.164, and FAXAGE's wire still gets the
10 digits it takes (and a number abroad is refused before any POST).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faxd.outbound.intake import Intake
from faxd.outbound.service import Outbound, list_jobs, queue_files
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.states import JobState


@pytest.mark.parametrize(
    ("country", "name", "faxno", "recipname"),
    [
        ("US", "+49 30 1234567 invoice.pdf", "+49301234567", "invoice"),
        ("US", "0049301234567_x.pdf", "+49301234567", "x"),
        ("US", "011 44 20 7946 0018 - Bob.pdf", "+442079460018", "Bob"),
        ("DE", "030 1234567 Rechnung.pdf", "+49301234567", "Rechnung"),
        ("GB", "020 7946 0018 - Bob.pdf", "+442079460018", "Bob"),
        ("US", "303-555-1212 - Acme Corp.pdf", "+13035551212", "Acme Corp"),
    ],
)
def test_dropped_names_are_stored_as_e164(
    make_settings: Callable[..., Any],
    folders: Any,
    db: Any,
    country: str,
    name: str,
    faxno: str,
    recipname: str,
) -> None:
    """The hot folder reads the name in [outbound] country and stores E.164."""
    intake = Intake(make_settings(country=country), db)
    path = folders.hot / name
    path.write_bytes(b"%PDF-1.4 dropped")
    assert intake.take(path) is not None
    assert [(j.faxno, j.recipname) for j in list_jobs(db)] == [(faxno, recipname)]


def test_national_name_of_another_country_is_rejected_with_a_reason(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """030 1234567 is 9 digits at home in the US: failed/ says how to write it abroad."""
    intake = Intake(make_settings(), db)
    path = folders.hot / "030 123456 Rechnung.pdf"
    path.write_bytes(b"%PDF-1.4 dropped")
    assert intake.take(path) is None
    reason = (folders.failed / "030 123456 Rechnung.pdf.txt").read_text()
    assert "9 digits" in reason and "+49 30 1234567" in reason


def test_send_reads_national_numbers_in_the_country(
    make_settings: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    """`faxd send` (queue_files) reads a national number in the settings' country."""
    doc = tmp_path / "brief.pdf"
    doc.write_bytes(b"%PDF-1.4 brief")
    queue_files([doc], "030 1234567", None, config=make_settings(country="DE"), db=db)
    queue_files([doc], "+1 (303) 555-1212", None, config=make_settings(country="DE"), db=db)
    assert [j.faxno for j in list_jobs(db)] == ["+49301234567", "+13035551212"]


def test_faxage_wire_gets_ten_digits_and_a_number_abroad_is_not_posted(
    make_settings: Callable[..., Any], db: Any, client: Any, sim: Any, tmp_path: Path
) -> None:
    """E.164 is stored; FAXAGE gets its 10 digits, and +49 fails before any POST."""
    doc = tmp_path / "letter.pdf"
    doc.write_bytes(b"%PDF-1.4 letter")
    settings = make_settings()
    (home,) = queue_files([doc], "303.555.1212", None, config=settings, db=db)
    (abroad,) = queue_files([doc], "+49 30 1234567", None, config=settings, db=db)
    Outbound(settings, db, FaxageOutbound(client, settings)).submit_pending()
    assert [j.faxno for j in sim.jobs.values()] == ["3035551212"]
    assert sim.sendfax_posts == 1
    jobs = {j.id: j for j in list_jobs(db)}
    assert jobs[home].faxno == "+13035551212"
    assert jobs[abroad].state == JobState.FAILED.value
    assert "FAXAGE takes 10-digit NANP numbers only" in (jobs[abroad].last_error or "")
