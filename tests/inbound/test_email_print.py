"""Real delivery actions through the pipeline: SMTP on loopback and a stand-in ``lp``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inbound_helpers import ManualClock, faxage_inbound, make_config, sim_settings

from faxd.config import EmailSpec, FolderSpec, PrintSpec, RouteSpec, SmtpSettings
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.client import FaxageClient
from faxd.store.models import Delivery
from faxd.store.states import FaxState

SALES = "+13035550101"


def smtp_settings(server: Any) -> SmtpSettings:
    return SmtpSettings(
        host=server.host,
        port=server.port,
        security="none",
        from_addr="faxd@example.com",
        timeout=2.0,
    )


def test_email_carries_the_fax_and_waits_for_the_server(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, smtp_server: Any, clock: ManualClock
) -> None:
    """SMTP down: the fax is kept; once the server is back one message goes out, then delfax."""
    route = RouteSpec(
        "sales",
        dnis=(SALES,),
        actions=(
            FolderSpec(f"{tmp_path}/fax/{{recvid}}.{{ext}}"),
            EmailSpec(
                to=("sales@example.com", "boss@example.com"),
                subject="Fax from {cid} to {dnis} ({pages} pages)",
            ),
        ),
    )
    config = make_config(
        tmp_path, (route,), faxage=sim_settings(sim), smtp=smtp_settings(smtp_server)
    )
    fax = sim.add_fax(SALES, "(720)555-0142", pagecount=3)
    pipe = InboundPipeline(faxage_inbound(client, config), db, config, clock=clock)

    smtp_server.stop()
    outcome = pipe.poll()
    assert outcome.done == 0 and outcome.errors == 1
    assert not fax.deleted
    assert (tmp_path / "fax" / f"{fax.recvid}.pdf").read_bytes() == fax.data  # folder went ahead
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.DOWNLOADED
    assert row.last_error is not None and "cannot send email" in row.last_error

    smtp_server.start()
    clock.advance(config.inbound.backoff_max)
    assert pipe.poll().done == 1
    assert fax.deleted
    assert len(smtp_server.messages) == 1
    mail_from, rcpt_to, _raw = smtp_server.messages[0]
    assert mail_from == "faxd@example.com"
    assert rcpt_to == ["sales@example.com", "boss@example.com"]
    message = smtp_server.parsed()[0]
    assert message["Subject"] == "Fax from 7205550142 to 3035550101 (3 pages)"
    attachments = [part for part in message.walk() if part.get_filename()]
    assert [a.get_filename() for a in attachments] == [f"fax-{fax.recvid}.pdf"]
    assert attachments[0].get_payload(decode=True) == fax.data
    with db.session() as session:
        email_row = session.query(Delivery).filter_by(action_type="email").one()
        assert email_row.state == "done" and "FAXD1" in (email_row.detail or "")


def write_lp(folder: Path) -> Path:
    """A stand-in ``lp``: records its arguments; fails while ``fail`` exists beside it."""
    script = folder / "lp"
    script.write_text(
        "#!/bin/sh\n"
        'here=$(dirname "$0")\n'
        'printf "%s\\n" "$@" > "$here/args-$$"\n'
        'cat "$here/args-$$" >> "$here/calls"; echo "--" >> "$here/calls"\n'
        'if [ -e "$here/fail" ]; then echo "lp: printer office-laser is stopped" >&2; exit 1; fi\n'
        'echo "request id is office-laser-17 (1 file(s))"\n'
    )
    os.chmod(script, 0o700)
    return script


def test_print_goes_through_lp_and_a_failing_lp_keeps_the_fax(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, clock: ManualClock
) -> None:
    """lp gets printer, options, copies, title and the file; while it fails the fax stays."""
    tools = tmp_path / "bin"
    tools.mkdir()
    lp = write_lp(tools)
    (tools / "fail").touch()
    route = RouteSpec(
        "front",
        actions=(
            PrintSpec(
                "office-laser", options=("sides=two-sided-long-edge",), copies=2, command=str(lp)
            ),
        ),
    )
    config = make_config(tmp_path, (route,), faxage=sim_settings(sim))
    fax = sim.add_fax(SALES, "(303)555-0100")
    pipe = InboundPipeline(faxage_inbound(client, config), db, config, clock=clock)

    assert pipe.poll().errors == 1
    assert not fax.deleted
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.last_error is not None and "is stopped" in row.last_error

    (tools / "fail").unlink()
    clock.advance(config.inbound.backoff_max)
    assert pipe.poll().done == 1 and fax.deleted
    calls = (tools / "calls").read_text().split("--\n")
    assert len([c for c in calls if c.strip()]) == 2  # one failed, one accepted: no repeat
    args = calls[1].splitlines()
    assert args[:6] == ["-d", "office-laser", "-n", "2", "-o", "sides=two-sided-long-edge"]
    assert args[6:8] == ["-t", f"Fax {fax.recvid} from 3035550100"]
    assert args[8] == str(config.inbound.spool_dir / f"faxage-{fax.recvid}.pdf")
    with db.session() as session:
        assert session.query(Delivery).one().detail == "office-laser-17"
