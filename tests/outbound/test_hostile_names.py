"""Hostile recipient parts in outbox file names: sent, filed, and never let out.

A file name is whatever the person (or the program) dropping it chose: CR/LF,
escapes, shell syntax, bidi overrides, dot runs.  The recipient part becomes
FAXAGE's ``recipname`` and the whole name travels to sent/ or failed/.  Through
the real simulator, each such file must end up in sent/ (or in failed/ with its
reason), with nothing written anywhere else and a printable one-line recipname.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from faxd.config import OutboundSettings
from faxd.outbound.service import Outbound
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.sim.documents import make_pdf

HOSTILE_NAMES = {
    "3035551212 - \r\nBcc: evil@example.com.pdf": "Bcc: evil@example.com",
    "3035551213 - $(reboot);`id`.pdf": "$(reboot);`id`",
    "3035551214 - \u202efdp.exe.pdf": "fdp.exe",
    "3035551215 - \x1b[2J\x07Acme.pdf": "[2JAcme",
    "3035551216 - %2e%2e%2fetc.pdf": "%2e%2e%2fetc",
    "3035551217 - ...pdf": "",
    "3035551218 - " + "\u03a9" * 80 + ".pdf": "\u03a9" * 32,
}


def test_hostile_recipient_names_are_sent_and_filed_without_escaping(
    make_settings: Callable[..., OutboundSettings], db: Any, client: Any, sim: Any, folders: Any
) -> None:
    """Every hostile name is sent once with a tame recipname and lands in sent/."""
    sim.job_seconds = 0.0
    service = Outbound(make_settings(), db, FaxageOutbound(client, make_settings()))
    before = {p for p in folders.hot.parent.rglob("*") if p.is_file()}
    documents: dict[str, bytes] = {}
    for name in HOSTILE_NAMES:
        part = folders.hot / f".{len(documents)}.part"
        documents[name] = make_pdf(repr(name), pagecount=1)
        part.write_bytes(documents[name])
        part.rename(folders.hot / name)

    deadline = time.monotonic() + 120
    service.run_once()
    while len(list(folders.sent.iterdir())) < len(HOSTILE_NAMES):
        assert time.monotonic() < deadline, sorted(folders.failed.iterdir())
        service.follow_up()
        time.sleep(0.2)

    assert sorted(p.name for p in folders.sent.iterdir()) == sorted(HOSTILE_NAMES)
    for name, data in documents.items():
        assert (folders.sent / name).read_bytes() == data
    assert list(folders.failed.iterdir()) == []
    assert [p for p in folders.hot.rglob("*") if p.is_file()] == []
    written = {p for p in folders.hot.parent.rglob("*") if p.is_file()} - before
    allowed = (folders.sent, folders.spool)
    assert {p for p in written if p.parent not in allowed and not p.name.startswith("faxd.db")} \
        == set()

    jobs = sorted(sim.jobs.values(), key=lambda job: job.faxno)
    assert len(jobs) == len(HOSTILE_NAMES)  # each file sent exactly once
    for job, (name, recipname) in zip(jobs, sorted(HOSTILE_NAMES.items()), strict=True):
        assert job.recipname == recipname, (name, job.recipname)
        assert job.recipname.isprintable() and len(job.recipname) <= 32
        assert [data for _n, data in job.files] == [documents[name]]
