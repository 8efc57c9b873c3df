"""Admin notifications survive SIGKILL: every failed fax is mailed, none twice.

A real ``faxd run --once`` is started again and again while faxes keep
arriving (each over ``max_fax_mb``, so it fails at its first try and raises
``fax_failed``), and most runs are killed: at a random moment (mostly while
polling), while the SMTP server holds the mail's data unanswered (aiosmtpd on
loopback, made slow on purpose), or just after it kept the mail and answered
250.  The events are written in the transaction that fails the fax and a mail
is recorded sent only after the server accepted it, so in the end every fax is
named in exactly one mail.  A kill in the instant between the server's 250 and
that record resends the same mail with the same Message-ID; mails are
therefore counted by Message-ID.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import SALES, write_config

from faxd.store.db import Database
from faxd.store.models import AdminEvent, AdminNotification, InboundFax

KILLS = 20
RUNS = 30
FAXES_PER_RUN = 2
FAXES = RUNS * FAXES_PER_RUN
#: Where a run is killed: at a random moment, while the server holds the mail's data,
#: just after the server kept it, or not at all.
MODES = ("moment", "moment", "receiving", "receiving", "accepted", "accepted", "none")


def config_for(tmp_path: Path, sim: Any, smtp_server: Any) -> Path:
    return write_config(
        tmp_path / "faxd.toml",
        f"""
[faxage]
username = "{sim.username}"
company = "{sim.company}"
password = "{sim.password}"
base_url = "{sim.base_url}"
timeout = 5

[database]
url = "sqlite:///{tmp_path / "faxd.db"}"

[inbound]
poll_interval = 1
spool_dir = "{tmp_path / "spool"}"
max_fax_mb = 0.001
concurrency = 1

[outbound]
enabled = false

[smtp]
host = "{smtp_server.host}"
port = {smtp_server.port}
from = "faxd@example.com"
timeout = 5

[notify]
email = ["it@example.com"]
min_interval = 0

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{tmp_path / "fax"}/{{recvid}}.{{ext}}" }}]
""",
    )


def all_mailed(db_path: Path) -> bool:
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.session() as session:
            failed = session.query(InboundFax).filter_by(state="failed").count()
            events = session.query(AdminEvent).count()
            unsent = (
                session.query(AdminEvent)
                .outerjoin(AdminNotification, AdminEvent.notification_id == AdminNotification.id)
                .filter(AdminNotification.sent_at.is_(None))
                .count()
            )
        return failed == FAXES and events == FAXES and unsent == 0
    except Exception:
        return False  # schema not there yet (killed before its first migration)
    finally:
        db.dispose()


def kill_when(proc: subprocess.Popen[bytes], event: threading.Event) -> bool:
    """SIGKILL ``proc`` as soon as ``event`` is set; ``False`` if it exited first."""
    while not event.wait(0.005):
        if proc.poll() is not None:
            return False
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return True


@pytest.mark.slow
def test_sigkill_around_notifications_loses_none_and_doubles_none(
    tmp_path: Path, sim: Any, smtp_server: Any
) -> None:
    """>= 20 SIGKILLs, many inside the mail pass, while 60 faxes fail: each in exactly one mail."""
    config = config_for(tmp_path, sim, smtp_server)
    sim.latency = 0.1  # a run does a few requests before a random kill lands
    smtp_server.data_delay = 0.3  # room for a kill while the server has not answered
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXD_")}
    rng = random.Random(20261130)
    log = tmp_path / "daemon.log"
    faxes: list[Any] = []
    kills: Counter[str] = Counter()

    def start() -> subprocess.Popen[bytes]:
        smtp_server.receiving.clear()
        smtp_server.accepted.clear()
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "faxd", "run", "--config", str(config), "--once"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip

    for run in range(RUNS):
        for _ in range(FAXES_PER_RUN):  # faxes keep arriving while faxd keeps dying
            data = b"%PDF-1.4\n" + len(faxes).to_bytes(2, "big") * 2048
            faxes.append(sim.add_fax(SALES, "(720)555-0142", data=data))
        mode = MODES[run % len(MODES)] if run < len(MODES) else rng.choice(MODES)
        proc = start()
        if mode == "moment":
            time.sleep(rng.uniform(0.2, 1.2))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills[mode] += 1
        elif mode != "none":
            event = smtp_server.receiving if mode == "receiving" else smtp_server.accepted
            if kill_when(proc, event):
                kills[mode] += 1
        proc.wait(timeout=120)

    smtp_server.data_delay = 0.0
    runs = 0
    while not all_mailed(tmp_path / "faxd.db") and runs < 20:  # the rest, left in peace
        runs += 1
        start().wait(timeout=120)

    assert sum(kills.values()) >= KILLS, f"only {dict(kills)} kills landed; see {log}"
    assert kills["receiving"] >= 3 and kills["accepted"] >= 3, dict(kills)
    assert all_mailed(tmp_path / "faxd.db"), f"not all mailed after {runs} more runs; see {log}"
    assert not any(fax.deleted for fax in faxes)

    by_message_id: dict[str, str] = {}
    for _from, _to, raw in smtp_server.messages:
        mail = message_from_bytes(raw, policy=default)
        body = str(mail.get_body(("plain",)).get_content())
        by_message_id.setdefault(str(mail["Message-ID"]), body)
    assert len(by_message_id) >= 5  # the faxes went out in many mails, not one at the end
    named = Counter(
        int(found)
        for body in by_message_id.values()
        for found in re.findall(r"fax (\d+) from \+17205550142", body)
    )
    assert named == Counter({fax.recvid: 1 for fax in faxes})
