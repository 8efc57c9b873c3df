"""``/healthz`` follows the provider down and back; ``/metrics`` counts what the daemon did."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from http_harness import listfax_count, running_daemon, wait_until
from prometheus_client.parser import text_string_to_metric_families


def healthz(url: str) -> tuple[int, dict[str, Any]]:
    answer = requests.get(f"{url}/healthz", timeout=10)
    return answer.status_code, answer.json()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def health_cli(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faxd", "health", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_healthz_503_when_logins_are_refused_or_the_provider_is_down_then_200(
    sim: Any, tmp_path: Path
) -> None:
    with running_daemon(tmp_path, sim, interval=0.5) as faxd:
        status, body = healthz(faxd.url)
        assert status == 200, body
        assert body["providers"]["faxage"]["last_successful_poll"]
        assert body["hot_folder"]["watched"] is True
        assert body["instance"]  # which of several servers answered
        cli = health_cli(faxd.layout.config)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["hot_folder"]["watched"] is None  # not visible from here

        sim.inject("err02")
        wait_until(lambda: healthz(faxd.url)[0] == 503)
        status, body = healthz(faxd.url)
        assert "refused the login" in body["reason"]
        cli = health_cli(faxd.layout.config)
        assert cli.returncode == 1 and "refused the login" in cli.stdout
        assert value(faxd.metrics(), "faxd_polling_paused", provider="faxage") == 1
        assert value(faxd.metrics(), "faxd_provider_errors_total", provider="faxage",
                     kind="auth") >= 1  # fmt: skip

        sim.clear_faults()
        wait_until(lambda: healthz(faxd.url)[0] == 200)

        port = sim.port
        sim.stop()  # the provider is down
        wait_until(lambda: healthz(faxd.url)[0] == 503)
        assert "no successful poll" in healthz(faxd.url)[1]["reason"]
        sim.port = port
        sim.start()
        wait_until(lambda: healthz(faxd.url)[0] == 200)


def test_healthz_503_when_the_hot_folder_is_not_watched(sim: Any, tmp_path: Path) -> None:
    with running_daemon(tmp_path, sim) as faxd:
        assert healthz(faxd.url)[0] == 200
        assert faxd.daemon.app is not None and faxd.daemon.app.outbound is not None
        faxd.daemon.app.outbound.watcher.stop()
        status, body = healthz(faxd.url)
        assert status == 503 and "not watched" in body["reason"]


def test_metrics_counters_match_what_the_daemon_did(sim: Any, tmp_path: Path) -> None:
    with running_daemon(tmp_path, sim) as faxd:
        sim.push_url = faxd.hook
        faxes = [sim.add_fax("3035550199") for _ in range(3)]
        wait_until(lambda: all(faxd.delivered(f.recvid) for f in faxes))
        wait_until(lambda: all(f.deleted for f in faxes))
        (faxd.layout.outbox / "waiting").mkdir()
        (faxd.layout.outbox / ".hidden").write_bytes(b"x")

        # A pushed poll may still start after the faxes are in: read once polling is quiet
        # and the listfax count did not move while /metrics was read.
        def quiet_read() -> str | None:
            before = listfax_count(sim)
            if faxd.daemon._inbound_busy.locked():
                return None
            text = faxd.metrics()
            busy = faxd.daemon._inbound_busy.locked()
            return text if not busy and listfax_count(sim) == before else None

        wait_until(lambda: quiet_read() is not None)
        text = quiet_read() or faxd.metrics()
        getfax = sum(1 for r in list(sim.requests) if r.operation == "getfax")
        assert value(text, "faxd_polls_total", provider="faxage") == listfax_count(sim)
        assert value(text, "faxd_poll_duration_seconds_count", provider="faxage") == (
            listfax_count(sim)
        )
        assert value(text, "faxd_download_duration_seconds_count", provider="faxage") == getfax
        assert getfax == 3
        assert value(text, "faxd_action_duration_seconds_count", provider="faxage",
                     action="folder") == 3  # fmt: skip
        assert value(text, "faxd_faxes", provider="faxage", state="done") == 3
        assert value(text, "faxd_callbacks_total", provider="faxage", kind="inbound") == len(
            sim.push_posts
        )
        assert value(text, "faxd_oldest_undelivered_fax_age_seconds", provider="faxage") == 0
        assert value(text, "faxd_last_successful_poll_timestamp_seconds", provider="faxage") > 0
        assert value(text, "faxd_polling_paused", provider="faxage") == 0
        assert value(text, "faxd_hotfolder_files_waiting") == 0

        sim.push_url = None
        held = sim.add_fax("3035550199")
        sim.inject("http500", operation="getfax")  # it cannot be downloaded for now
        faxd.poll_now()
        wait_until(lambda: value(faxd.metrics(), "faxd_faxes", provider="faxage",
                                 state="listed") == 1)  # fmt: skip
        text = faxd.metrics()
        assert value(text, "faxd_oldest_undelivered_fax_age_seconds", provider="faxage") >= 0
        assert value(text, "faxd_provider_errors_total", provider="faxage", kind="transient") >= 1
        assert not faxd.delivered(held.recvid)


def test_alert_rules_use_only_metrics_faxd_serves(sim: Any, tmp_path: Path) -> None:
    rules = (Path(__file__).resolve().parents[2] / "config" / "faxd-alerts.yml").read_text()
    used = set(re.findall(r"\bfaxd_[a-z_]+", rules))
    assert {"faxd_last_successful_poll_timestamp_seconds",
            "faxd_oldest_undelivered_fax_age_seconds", "faxd_polling_paused"} <= used  # fmt: skip
    with running_daemon(tmp_path, sim) as faxd:
        sim.inject("err02", times=1)
        faxd.poll_now()
        wait_until(lambda: "faxd_provider_errors_total{" in faxd.metrics())
        served = {name for name, _labels in samples(faxd.metrics())}
    assert used <= served, used - served
