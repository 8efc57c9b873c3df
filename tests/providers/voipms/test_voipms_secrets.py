"""The VoIP.ms API password never reaches a log event, an exception or a repr.

The password rides in the query string of every GET, so any error text that
quoted a URL or a ``requests`` exception would carry it.  The checks run with
the secret *unregistered* (``forget_secrets``), so they prove the code never
puts it there, rather than that redaction caught it afterwards.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from voipms_helpers import VOIPMS_PASSWORD, settings_for, write_pdf

from faxd.errors import FaxdError
from faxd.providers.voipms import provider
from faxd.providers.voipms.client import VoipmsClient
from faxd.providers.voipms.sim import VoipmsSimulator
from faxd.redact import forget_secrets
from faxd.sim.documents import make_pdf


def unregistered(client: VoipmsClient) -> VoipmsClient:
    forget_secrets()
    return client


def failure(action: Callable[[], object]) -> FaxdError:
    with pytest.raises(FaxdError) as caught:
        action()
    return caught.value


def all_text(exc: BaseException) -> str:
    chain = "".join(traceback.format_exception(exc))
    return chain + repr(exc) + str(getattr(exc, "message", ""))


@pytest.mark.parametrize(
    ("kind", "after"),
    [("http500", False), ("reset", False), ("reset", True), ("auth", False), ("slow", False)],
)
def test_failures_carry_no_password(
    voipms_sim: VoipmsSimulator,
    voipms_client: VoipmsClient,
    tmp_path: Path,
    kind: str,
    after: bool,
) -> None:
    client = unregistered(voipms_client)
    voipms_sim.slow_seconds = 10
    client.transport.timeout = 0.5
    (fax,) = voipms_sim.seed_inbound(1)
    data = make_pdf("out")
    path = write_pdf(tmp_path, data)
    voipms_sim.inject(kind, after=after)
    actions: list[Callable[[], object]] = [
        client.folders,
        lambda: client.download(fax.remote_id, tmp_path / "in.pdf"),
        lambda: client.delete(fax.remote_id),
        lambda: client.send(
            path,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            to_number="3035550199",
            from_name="A",
            from_number="3035550101",
        ),
    ]
    with structlog.testing.capture_logs() as logs:
        errors = [failure(action) for action in actions]
    assert logs or kind == "auth", "the retries were logged"
    for exc in errors:
        assert VOIPMS_PASSWORD not in all_text(exc)
    assert VOIPMS_PASSWORD not in repr(logs)


def test_a_refused_connection_carries_no_password(tmp_path: Path) -> None:
    client = unregistered(
        VoipmsClient(
            "u@example.com",
            VOIPMS_PASSWORD,
            base_url="http://127.0.0.1:9/api/v1/rest.php",
            retries=0,
        )
    )
    with structlog.testing.capture_logs() as logs:
        exc = failure(client.folders)
    assert VOIPMS_PASSWORD not in all_text(exc)
    assert VOIPMS_PASSWORD not in repr(logs)


def test_reprs_carry_no_password(voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient) -> None:
    config: Any = SimpleNamespace(
        voipms=settings_for(voipms_sim, after_delivery="move", from_number="3035550101")
    )
    objects = [
        voipms_client,
        voipms_client.transport,
        voipms_sim,
        config.voipms,
        provider.make_inbound(config, client=voipms_client),
        provider.make_outbound(config, client=voipms_client),
        provider.make_checker(config),
    ]
    for thing in objects:
        assert VOIPMS_PASSWORD not in repr(thing)
        assert VOIPMS_PASSWORD not in str(thing)
