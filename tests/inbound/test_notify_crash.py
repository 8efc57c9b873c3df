"""Admin notifications survive SIGKILL: every failed fax is mailed, none twice.

A real ``faxd run --once`` is killed at random moments again and again while
60 faxes fail (each is over ``max_fax_mb``, so it fails at its first try) and
their ``fax_failed`` mails go out through aiosmtpd on loopback.  The events
are written in the transaction that fails the fax and the mail is recorded
sent only after the server accepted it, so in the end every fax is named in
exactly one mail.  A kill in the instant between the server's 250 and that
record resends the same mail with the same Message-ID; mails are therefore
counted by Message-ID.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
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
FAXES = 60


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


@pytest.mark.slow
def test_sigkill_around_notifications_loses_none_and_doubles_none(
    tmp_path: Path, sim: Any, smtp_server: Any
) -> None:
    """>= 20 SIGKILLs while 60 faxes fail and are mailed: each fax in exactly one mail."""
    config = config_for(tmp_path, sim, smtp_server)
    faxes = [
        sim.add_fax(SALES, "(720)555-0142", data=b"%PDF-1.4\n" + bytes([i]) * 4096)
        for i in range(FAXES)
    ]
    sim.latency = 0.15  # a run does a few faxes before its kill lands
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXD_")}
    rng = random.Random(20261130)
    log = tmp_path / "daemon.log"
    kills = runs = 0
    while not all_mailed(tmp_path / "faxd.db") and runs < 200:
        runs += 1
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "faxd", "run", "--config", str(config), "--once"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        if kills < KILLS:
            time.sleep(rng.uniform(0.2, 1.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        proc.wait(timeout=120)

    assert kills >= KILLS, f"only {kills} kills landed; see {log}"
    assert all_mailed(tmp_path / "faxd.db"), f"not all mailed after {runs} runs; see {log}"
    assert not any(fax.deleted for fax in faxes)

    by_message_id: dict[str, str] = {}
    for _from, _to, raw in smtp_server.messages:
        mail = message_from_bytes(raw, policy=default)
        body = str(mail.get_body(("plain",)).get_content())
        by_message_id.setdefault(str(mail["Message-ID"]), body)
    named = Counter(
        int(found)
        for body in by_message_id.values()
        for found in re.findall(r"fax (\d+) from \+17205550142", body)
    )
    assert named == Counter({fax.recvid: 1 for fax in faxes})
