"""Provider callbacks: a pushed fax is delivered at once, a burst costs a handful of polls.

The daemon runs in a thread with ``poll_interval = 300`` against the simulator
over HTTP, the listener is waitress on a free port, the client is requests.
Only a callback (or a poll the test drives) can deliver a fax in these tests.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from http_harness import listfax_count, running_daemon, wait_until

from faxd.sim.documents import make_pdf


def test_pushed_fax_is_delivered_without_waiting_for_the_poll(sim: Any, tmp_path: Path) -> None:
    with running_daemon(tmp_path, sim) as faxd:
        sim.push_url = faxd.hook
        fax = sim.add_fax("3035550199")
        wait_until(lambda: faxd.delivered(fax.recvid))
        assert sim.push_posts and sim.push_posts[0][1]["recvid"] == str(fax.recvid)


def test_fax_without_callback_or_with_bad_token_waits_for_the_next_poll(
    sim: Any, tmp_path: Path
) -> None:
    with running_daemon(tmp_path, sim) as faxd:
        quiet = sim.add_fax("3035550199")  # no push URL: nobody calls
        sim.push_url = faxd.hook.replace(faxd.token, "f" * len(faxd.token))
        forged = sim.add_fax("3035550199")
        wait_until(lambda: sim.push_failures == 1)  # the 404 made the post fail
        polls = listfax_count(sim)
        assert not faxd.delivered(quiet.recvid) and not faxd.delivered(forged.recvid)
        assert listfax_count(sim) == polls  # the refused callback asked for nothing
        faxd.poll_now()
        wait_until(lambda: faxd.delivered(quiet.recvid) and faxd.delivered(forged.recvid))


def test_burst_of_500_callbacks_makes_a_handful_of_polls(sim: Any, tmp_path: Path) -> None:
    with running_daemon(tmp_path, sim) as faxd:
        before = listfax_count(sim)
        fax = sim.add_fax("3035550199")
        body = {"recvid": str(fax.recvid), "dnis": "3035550199"}

        def call(_n: int) -> tuple[int, str]:
            answer = requests.post(faxd.hook, data=body, timeout=10)
            return answer.status_code, answer.text

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(500)))
            health = requests.get(f"{faxd.url}/healthz", timeout=10)  # still answering
        assert answers == [(200, "OK")] * 500
        assert health.status_code == 200
        wait_until(lambda: faxd.delivered(fax.recvid))
        wait_until(lambda: not faxd.daemon._inbound_busy.locked())
        time.sleep(1.5)  # let any poll still asked for start (none should be)
        wait_until(lambda: not faxd.daemon._inbound_busy.locked())
        polls = listfax_count(sim) - before
        assert 1 <= polls <= 10, polls


def test_url_notify_finishes_a_job_without_waiting_for_the_status_interval(
    sim: Any, tmp_path: Path
) -> None:
    with running_daemon(tmp_path, sim) as faxd:
        outbox = faxd.layout.outbox
        part = outbox / "3035550123.pdf.part"
        part.write_bytes(make_pdf("pushed", pagecount=1))
        part.rename(outbox / "3035550123.pdf")
        wait_until(lambda: bool(sim.jobs))
        job = next(iter(sim.jobs.values()))
        assert job.url_notify == faxd.hook  # faxd filled it in: token in the path
        wait_until(lambda: any(faxd.layout.sent.rglob("*3035550123*")))
        assert sim.push_posts[-1][1]["jobid"] == str(job.jobid)
