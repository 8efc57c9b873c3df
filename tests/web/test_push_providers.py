"""VoIP.ms and iFax call back: the pushed fax (or finished job) is handled at once.

The daemon runs with ``poll_interval`` and ``status_interval`` of 300 s, FAXAGE
and one other provider configured, each against its simulator over HTTP.
The simulators post their callbacks the way the real providers do (VoIP.ms: a
multipart ``url_callback`` with the fax; iFax: JSON webhooks) to the hook URL.
Only a callback can get a fax delivered or a job filed within these tests; the
callback makes faxd poll *that* provider (FAXAGE is not listed again) or
follow up the sending provider's jobs.  A callback naming a provider that is
not configured is a 404, counted like a wrong token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from http_harness import listfax_count, wait_until
from prometheus_client.parser import text_string_to_metric_families
from provider_push_harness import running_with

from faxd.sim.documents import make_pdf
from faxd.sim.kits import KITS

#: The operations that list a provider's received faxes.
LISTING = frozenset({"getFaxMessages", "fax-list-all", "inbound/fax-list-all"})


def listings(sim: Any) -> int:
    return sum(1 for operation, _params in list(sim.requests) if operation in LISTING)


@pytest.fixture(params=["voipms", "ifax"])
def other(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    name = request.param
    sim = KITS[name].start(settle_seconds=1.0)
    try:
        yield name, sim
    finally:
        sim.stop()


def sample(url: str, name: str, **labels: str) -> float:
    """The value of one sample of ``/metrics`` (0 when absent), read by Prometheus's parser."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


def refused(url: str) -> float:
    return sample(url, "faxd_callbacks_refused_total", reason="bad_token")


def test_pushed_fax_is_taken_from_that_provider_without_waiting_for_the_poll(
    sim: Any, other: tuple[str, Any], tmp_path: Path
) -> None:
    name, provider_sim = other
    with running_with(tmp_path, sim, provider_sim, name, inbound=("faxage", name)) as faxd:
        faxage_polls, polls = listfax_count(sim), listings(provider_sim)
        quiet = sim.add_fax("3035550199")  # FAXAGE's: only the next poll takes it
        provider_sim.push_url = faxd.hook(name)
        (fax,) = provider_sim.seed_inbound(1)
        wait_until(lambda: len(faxd.delivered(name)) == 1)
        assert provider_sim.pusher.posts and provider_sim.pusher.failures == 0
        assert listings(provider_sim) > polls
        wait_until(lambda: not faxd.daemon._inbound_busy.locked())
        # That provider was polled; FAXAGE, not due for 300 s, was left alone.
        assert listfax_count(sim) == faxage_polls
        assert not faxd.delivered("faxage")
        assert fax.released or name == "voipms"  # iFax: downloaded; VoIP.ms: see below
        if name == "voipms":
            wait_until(lambda: fax.released)  # deleted after delivery, as configured
        del quiet
        # /metrics labels it by the provider it came from.
        assert sample(faxd.url, "faxd_callbacks_total", provider=name, kind="inbound") >= 1
        assert sample(faxd.url, "faxd_polls_total", provider=name) >= 2
        assert sample(faxd.url, "faxd_action_duration_seconds_count", provider=name) == 1
        assert sample(faxd.url, "faxd_download_duration_seconds_count", provider=name) == 1
        assert sample(faxd.url, "faxd_faxes", provider=name, state="done") == 1


def test_a_failing_provider_is_counted_under_its_own_name(
    sim: Any, other: tuple[str, Any], tmp_path: Path
) -> None:
    """faxd_provider_errors counts VoIP.ms's and iFax's failures too, by provider and kind."""
    name, provider_sim = other
    with running_with(tmp_path, sim, provider_sim, name, inbound=("faxage", name)) as faxd:
        provider_sim.inject("http500", times=50)  # more than the client's retries
        provider_sim.push_url = faxd.hook(name)
        provider_sim.seed_inbound(1)
        wait_until(
            lambda: (
                sample(faxd.url, "faxd_provider_errors_total", provider=name, kind="transient") >= 1
            )
        )
        assert sample(faxd.url, "faxd_provider_errors_total", provider="faxage") == 0


def test_a_callback_also_polls_another_provider_that_is_due(
    sim: Any, other: tuple[str, Any], tmp_path: Path
) -> None:
    """Callbacks move the shared poll forward; a provider due meanwhile is polled with them."""
    name, provider_sim = other
    with running_with(tmp_path, sim, provider_sim, name, inbound=("faxage", name)) as faxd:
        faxage_polls = listfax_count(sim)
        faxd.daemon._polled_at["faxage"] -= 300.0  # as if its poll_interval had gone by
        waiting = sim.add_fax("3035550199")
        provider_sim.push_url = faxd.hook(name)
        provider_sim.seed_inbound(1)
        wait_until(lambda: len(faxd.delivered(name)) == 1)
        wait_until(lambda: (faxd.layout.root / "in" / f"faxage-{waiting.recvid}.pdf").exists())
        assert listfax_count(sim) > faxage_polls


def test_callback_for_a_provider_not_configured_is_404_and_counted(
    sim: Any, other: tuple[str, Any], tmp_path: Path
) -> None:
    name, provider_sim = other
    absent = "ifax" if name == "voipms" else "voipms"
    with running_with(tmp_path, sim, provider_sim, name, inbound=("faxage", name)) as faxd:
        before = refused(faxd.url)
        polls = listfax_count(sim), listings(provider_sim)
        answer = requests.post(faxd.hook(absent), json={"jobId": 1}, timeout=10)
        assert answer.status_code == 404
        assert refused(faxd.url) == before + 1
        configured = requests.post(faxd.hook(name), json={"direction": "inbound"}, timeout=10)
        assert configured.status_code == 200
        assert configured.text == ("ok" if name == "voipms" else "OK")
        wait_until(lambda: listings(provider_sim) > polls[1])
        assert listfax_count(sim) == polls[0]


def test_ifax_status_webhook_files_the_job_without_waiting_for_the_status_interval(
    sim: Any, tmp_path: Path
) -> None:
    ifax = KITS["ifax"].start(settle_seconds=1.0)
    try:
        with running_with(
            tmp_path, sim, ifax, "ifax", inbound=("faxage",), outbound="ifax"
        ) as faxd:
            ifax.push_url = faxd.hook("ifax")
            outbox = faxd.layout.outbox
            part = outbox / "3035550123.pdf.part"
            part.write_bytes(make_pdf("pushed", pagecount=1))
            part.rename(outbox / "3035550123.pdf")
            wait_until(lambda: bool(ifax.jobs))
            wait_until(lambda: any(faxd.layout.sent.rglob("*3035550123*")))
            (url, body) = ifax.pusher.posts[-1]
            assert url == faxd.hook("ifax") and b'"direction": "outbound"' in body
            assert ifax.jobs[0].status == "delivered"
            wait_until(lambda: sample(faxd.url, "faxd_jobs", provider="ifax", state="sent") == 1)
            assert sample(faxd.url, "faxd_jobs", provider="faxage", state="sent") == 0
    finally:
        ifax.stop()
