"""The iFax access token never reaches a log line, an exception or a repr."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
import structlog
from ifax_support import IFAX_TOKEN

from faxd.config.model import IfaxSettings
from faxd.errors import FaxdError
from faxd.providers.ifax.client import IfaxClient
from faxd.providers.ifax.provider import IfaxInbound, IfaxOutbound
from faxd.providers.ifax.sim import IfaxSimulator
from faxd.redact import redact
from faxd.sim.documents import make_pdf


def test_token_stays_out_of_logs_errors_and_reprs(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    errors: list[FaxdError] = []
    (fax,) = ifax_sim.seed_inbound(1)
    data = make_pdf("secret test")
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    with structlog.testing.capture_logs() as logs:
        ifax_sim.inject("http500", times=2)
        ifax_sim.inject("corrupt_base64", times=1)
        list(ifax_client.inbound_pages(date(2026, 3, 10), date(2026, 3, 10)))
        ifax_client.download(*fax.remote_id.split(":"), tmp_path / "in.pdf")
        ifax_client.send("+13035550101", path, file_name="doc.pdf", size=len(data), sha256=sha)
        for kind in ("auth", "rate_limit", "reset", "http500"):
            ifax_sim.clear_faults()
            ifax_sim.inject(kind)
            with pytest.raises(FaxdError) as caught:
                ifax_client.send(
                    "+13035550101", path, file_name="doc.pdf", size=len(data), sha256=sha
                )
            errors.append(caught.value)
            with pytest.raises(FaxdError) as caught:
                ifax_client.check_login(date(2026, 3, 10))
            errors.append(caught.value)
    assert any(entry["event"] == "ifax.retry" for entry in logs)
    assert IFAX_TOKEN not in repr(logs)
    for error in errors:
        assert IFAX_TOKEN not in str(error) and IFAX_TOKEN not in repr(error)
        assert IFAX_TOKEN not in repr(error.__cause__) and IFAX_TOKEN not in str(error.__context__)
    settings = IfaxSettings(access_token=IFAX_TOKEN, base_url=ifax_sim.base_url)
    for thing in (
        ifax_client,
        ifax_sim,
        settings,
        IfaxInbound(settings, ifax_client),
        IfaxOutbound(settings, ifax_client, clock=ifax_sim.clock),
    ):
        assert IFAX_TOKEN not in repr(thing)
    assert IFAX_TOKEN not in repr(ifax_sim.requests)  # never in a body, only the header
    assert redact(f"header accessToken: {IFAX_TOKEN}") == "header accessToken: ********"
