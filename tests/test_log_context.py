"""Every log line about one fax or one job says which (ARCHITECTURE.md, Logging).

A line about a received fax carries ``provider``, ``remote_id`` and ``dnis`` (and ``route``
once the fax is routed); a line about an outbound job carries ``job_id`` (faxd's
job number) and ``faxno``.  The real daemon (`python -m faxd run --once`, JSON
lines on stderr) works through faxes and outbox files against the simulator,
with a few faults so that retry and failure lines are written too, and every
line is checked against what the database says about that fax or job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from faxd.demo import FRONT_DESK, SALES, SUPPORT, DemoLayout, drop_outbox_files, write_config
from faxd.sim import FaxageSimulator

Event = dict[str, Any]


def faxd(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faxd", *argv, "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def run_once(config: Path) -> list[Event]:
    """One `faxd run --once`; every stderr line but the final summary is a JSON event."""
    done = faxd(config, "run", "--once")
    return [json.loads(line) for line in done.stderr.splitlines() if not line.startswith("faxd: ")]


def fax_problems(events: list[Event], faxes: dict[str, Event]) -> list[str]:
    """Each line naming a fax without the rest of its context, or with a wrong one."""
    problems: list[str] = []
    routed: set[str] = set()
    for n, event in enumerate(events):
        if "remote_id" not in event and "dnis" not in event:
            continue
        where = f"line {n} {event['event']!r} ({event.get('logger')})"
        fax = faxes.get(event.get("remote_id", ""))
        if fax is None:
            problems.append(f"{where}: remote_id {event.get('remote_id')!r} is no fax faxd knows")
        elif event.get("provider") != fax["provider"]:
            problems.append(f"{where}: provider {event.get('provider')!r}, not {fax['provider']}")
        elif event.get("dnis") != fax["dnis"]:
            problems.append(f"{where}: dnis {event.get('dnis')!r}, the fax's is {fax['dnis']}")
        elif "route" in event:
            routed.add(fax["remote_id"])
            if event["route"] != fax["route"]:
                problems.append(f"{where}: route {event['route']!r}, the fax's is {fax['route']!r}")
        elif fax["remote_id"] in routed:
            problems.append(f"{where}: fax {fax['remote_id']} was routed, but no route here")
    return problems


def job_problems(events: list[Event], jobs: dict[int, Event]) -> list[str]:
    """Each line naming a job or FAXAGE job id without faxd's job_id and faxno, or wrong ones."""
    problems: list[str] = []
    for n, event in enumerate(events):
        if not {"job_id", "faxno", "faxage_jobid", "remote_jobid"} & set(event):
            continue
        where = f"line {n} {event['event']!r} ({event.get('logger')})"
        job = jobs.get(event.get("job_id", -1))
        if job is None:
            problems.append(f"{where}: job_id {event.get('job_id')!r} is no faxd job")
        elif event.get("faxno") != job["faxno"]:
            problems.append(f"{where}: faxno {event.get('faxno')!r}, the job's is {job['faxno']}")
    return problems


def events_naming(events: list[Event], key: str) -> dict[str, set[Any]]:
    """Event name -> the values of ``key`` on the lines of that name that carry it."""
    named: dict[str, set[Any]] = defaultdict(set)
    for event in events:
        if key in event:
            named[event["event"]].add(event[key])
    return named


@dataclass(frozen=True)
class Scenario:
    """The JSON lines of three `faxd run --once` and the faxes and jobs they were about."""

    events: list[Event]
    faxes: dict[int, Event]
    jobs: dict[int, Event]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Four faxes on three routes and two outbox files, with faults on the way, run to the end."""
    with FaxageSimulator("acme", "12345", "s3cr3t-Pa55word-x9", job_seconds=0.2) as sim:
        layout = DemoLayout(tmp_path_factory.mktemp("log-context") / "site")
        config = write_config(
            layout, base_url=sim.base_url, username=sim.username, company=sim.company,
            password=sim.password, interval=1.0,
        )
        with config.open("a") as out:
            out.write("clear_after_status = true\n")  # [outbound] is the last section
        sim.seed_inbound(4, dnis=(SALES, SUPPORT, FRONT_DESK))
        drop_outbox_files(layout)
        # Faults that make faxd write its retry and failure lines too.
        faults = [
            sim.inject("err13", operation="getfax", times=1),  # retried inside the client
            sim.inject("err08", operation="delfax", times=1),  # fails a fax after delivery
            sim.inject("err01", operation="sendfax", times=1),  # retried: certainly not sent
            sim.inject("err08", operation="clear", times=1),  # clearing a finished job fails
        ]
        events = run_once(config)
        events += run_once(config)  # follows the jobs to their end and clears them
        for fax in json.loads(faxd(config, "inbox", "--json").stdout):
            if fax["state"] == "failed":
                assert faxd(config, "retry", fax["remote_id"]).returncode == 0
        events += run_once(config)
        assert [f.fired for f in faults] == [1, 1, 1, 1]
        faxes = {f["remote_id"]: f for f in json.loads(faxd(config, "inbox", "--json").stdout)}
        jobs = {j["id"]: j for j in json.loads(faxd(config, "jobs", "--json").stdout)}
        yield Scenario(events, faxes, jobs)


def test_the_scenario_reached_every_step(scenario: Scenario) -> None:
    """Every fax was delivered and deleted and every job sent, so the checks below see it all."""
    assert [f["state"] for f in scenario.faxes.values()] == ["done"] * 4
    assert [j["state"] for j in scenario.jobs.values()] == ["sent"] * 2


def test_fax_lines_carry_remote_id_dnis_and_route(scenario: Scenario) -> None:
    """Each line naming a fax has its provider, remote id and dnis, and its route from the
    routing on."""
    per_fax = events_naming(scenario.events, "remote_id")
    for name in ("faxage.downloaded", "inbound.action_done", "inbound.done"):
        assert per_fax[name] == set(scenario.faxes), (name, dict(per_fax))
    assert {"inbound.fax_failed", "faxage.retry"} <= set(per_fax)
    problems = fax_problems(scenario.events, scenario.faxes)
    assert problems == [], "\n".join(problems)


def test_job_lines_carry_job_id_and_faxno(scenario: Scenario) -> None:
    """Each line naming an outbound job has faxd's job_id and the job's faxno."""
    per_job = events_naming(scenario.events, "job_id")
    for name in ("outbound.queued", "outbound.submitted", "outbound.finished"):
        assert per_job[name] == set(scenario.jobs), (name, dict(per_job))
    assert {"outbound.clear_failed", "faxage.sendfax_retry"} <= set(per_job)
    problems = job_problems(scenario.events, scenario.jobs)
    assert problems == [], "\n".join(problems)
