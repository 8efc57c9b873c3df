"""Shared parts of the outbound tests that run once per sending provider.

Why one module: the end-to-end, fault and crash tests must check the same
promises (each drop sent at most once, its bytes unchanged, every drop ending
in sent/ or failed/ with a reason) for FAXAGE, VoIP.ms, iFax and faxnummer.de,
so the simulator start, the config file and the checks are written once here.
Everything is real: the simulator answers over HTTP on loopback, the config is
a TOML file read by :func:`faxd.config.load_config`, the service is the one
:func:`faxd.app.build_app` builds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faxd.outbound.service import list_jobs
from faxd.sim.kits import KITS
from faxd.store.db import Database
from faxd.store.models import OutboundJob

#: Every provider faxd can send through, in registry order.
SENDERS = tuple(name for name, kit in KITS.items() if kit.sends)
#: The number every simulator fails a send to.
FAIL_NUMBER = "3035550199"


@dataclass(frozen=True)
class Folders:
    hot: Path
    sent: Path
    failed: Path
    spool: Path

    @classmethod
    def under(cls, root: Path) -> Folders:
        found = cls(root / "outbox", root / "sent", root / "failed", root / "spool")
        for folder in (found.hot, found.sent, found.failed, found.spool):
            folder.mkdir(parents=True, exist_ok=True)
        return found


def start_sim(name: str, *, settle_seconds: float = 0.3, seed: int = 0) -> Any:
    """The provider's simulator, started, failing every send to :data:`FAIL_NUMBER`."""
    sim = KITS[name].start(seed=seed, settle_seconds=settle_seconds)
    # Each simulator compares the number in its own form; give it every form faxd may send.
    sim.fail_numbers.update(
        {FAIL_NUMBER, "1" + FAIL_NUMBER, "+1" + FAIL_NUMBER, "001" + FAIL_NUMBER}
    )
    return sim


def write_config(
    root: Path, name: str, sim: Any, folders: Folders, *, outbound: str = "", timeout: float = 5
) -> Path:
    """A real faxd.toml sending through ``name``'s simulator; ``outbound`` adds keys."""
    path = root / "faxd.toml"
    path.write_text(
        KITS[name].section(sim, timeout=timeout)
        + f"""
[database]
url = "sqlite:///{root / "faxd.db"}"

[inbound]
enabled = false
spool_dir = "{root / "inbound-spool"}"

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{root / "inbox"}/{{recvid}}.{{ext}}" }}]

[outbound]
enabled = true
provider = "{name}"
hot_folder = "{folders.hot}"
sent_folder = "{folders.sent}"
failed_folder = "{folders.failed}"
spool_dir = "{folders.spool}"
settle_seconds = 0.3
status_interval = 1
clear_after_status = true
{outbound}"""
    )
    path.chmod(0o600)  # it holds a password: faxd refuses a world-readable one
    return path


@dataclass(frozen=True)
class Received:
    """One send the simulator took: its ids (any of them may be faxd's remote id) and bytes."""

    ids: frozenset[str]
    number: str
    data: bytes


def received(sim: Any) -> list[Received]:
    """Every send the simulator recorded, whatever its own job type looks like."""
    jobs = list(sim.jobs.values()) if isinstance(sim.jobs, dict) else list(sim.jobs)
    found = []
    for job in jobs:
        ids = frozenset(
            str(getattr(job, attr))
            for attr in ("jobid", "id", "job_id", "uuid")
            if hasattr(job, attr)
        )
        number = str(getattr(job, "number", None) or getattr(job, "faxno", ""))
        data = job.data if hasattr(job, "data") else job.files[0][1]
        found.append(Received(ids, number, data))
    return found


def sends_per_drop(sim: Any, drops: dict[str, bytes]) -> Counter[str]:
    """How often the simulator received each dropped file's bytes, by file name."""
    counts = Counter(got.data for got in received(sim))
    return Counter({name: counts[data] for name, data in drops.items()})


def reason_of(folders: Folders, name: str) -> str | None:
    """The reason beside a failed file, or ``None`` when it is not in failed/."""
    reason = folders.failed / (name + ".txt")
    if not (folders.failed / name).is_file() or not reason.is_file():
        return None
    return reason.read_text()


def outcome(folders: Folders, name: str) -> str | None:
    """``"sent"`` / ``"failed"`` once the file is in that folder (failed: with its reason)."""
    if (folders.sent / name).is_file():
        return "sent"
    if reason_of(folders, name) is not None:
        return "failed"
    return None


def all_settled(folders: Folders, names: Iterable[str]) -> bool:
    return all(outcome(folders, name) is not None for name in names)


def drive(
    passes: Callable[[], object], done: Callable[[], bool], *, timeout: float, step: float = 0.1
) -> bool:
    """Run ``passes`` (submit + follow up) until ``done()`` or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        passes()
        if done():
            return True
        time.sleep(step)
    return done()


def jobs_by_file(db: Database) -> dict[str, list[OutboundJob]]:
    """The outbound rows by the file name they were taken from."""
    found: dict[str, list[OutboundJob]] = {}
    for job in list_jobs(db):
        found.setdefault(job.source_name, []).append(job)
    return found


def check_rows(
    db: Database, name: str, sim: Any, folders: Folders, drops: dict[str, bytes]
) -> None:
    """Each drop is one row that ended as its file did, with the provider and its remote id.

    A sent row's remote id is the simulator's id of the send carrying the
    row's own bytes (two drops to one number must not share an id).
    """
    rows = jobs_by_file(db)
    sims = received(sim)
    for file, data in drops.items():
        assert len(rows.get(file, [])) == 1, (file, rows.get(file))
        (row,) = rows[file]
        ended = outcome(folders, file)
        assert row.state == ended, (file, row.state, ended, row.last_error)
        assert row.provider == name, (file, row.provider)
        if row.state == "sent":
            carrying = [got for got in sims if got.data == data]
            assert len(carrying) == 1, (file, len(carrying))
            assert row.remote_jobid in carrying[0].ids, (file, row.remote_jobid, carrying[0].ids)
