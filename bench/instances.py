"""Benchmark: do two faxd instances sharing PostgreSQL drain an inbox faster than one?

Issue 14: 300 faxes at 20 ms simulator latency, drained by (one) a single
``faxd run`` on PostgreSQL and (two) two ``faxd run`` processes sharing that
database and the FAXAGE account, each at ``concurrency = 4``.  The drain time
runs from the moment the faxes arrive on the simulator (every instance READY
and idle) until every fax is deleted there and ``done`` in the database.
Before each drain, the instances idle for ``--idle`` seconds and the
``listfax`` calls in that window are counted per poll interval: two
instances should list the account about as often as one (one elected
lister), not twice as often.

Target: two/one <= 0.6.  The listfax figures are reported beside it.
Two instances on one machine share its cores (and PostgreSQL runs there too),
so the CPU the whole machine spent while draining is printed beside the
figures: a machine already busy with one instance cannot halve the time.
The database: ``FAXD_BENCH_PG_URL`` (a superuser's URL; each run makes and
drops its own database), else a private cluster started for the run with
``tests/pg_helper.py``'s :class:`PrivateCluster` (needs PostgreSQL's
``initdb``/``pg_ctl``).  The instances are those of the system tests
(``tests/instances_helper.py``).
Run: ``.venv/bin/python bench/instances.py [--faxes 300] [--idle 10]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import BENCH, SIM_LOGIN, cpu_seconds, verdict, write_results

sys.path.insert(0, str(BENCH.parent / "tests"))

import pg_helper  # from tests/, found through the path set above
from instances_helper import Office, all_faxes_done, wait_until

TARGET_RATIO = 0.6
LATENCY = 0.02
CONCURRENCY = 4
POLL_INTERVAL = 1.0
URL_ENV = "FAXD_BENCH_PG_URL"


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (user, nice, system) since boot."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    return sum(int(first[k]) for k in (1, 2, 3)) / os.sysconf("SC_CLK_TCK")


@contextmanager
def postgres_admin() -> Iterator[Any]:
    """A superuser's URL: ``FAXD_BENCH_PG_URL``, or a private cluster for this run."""
    given = os.environ.get(URL_ENV)
    if given:
        yield pg_helper.server_url(given)
        return
    reason = pg_helper.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"bench/instances.py needs PostgreSQL: set {URL_ENV}, or {reason}")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cluster = pg_helper.PrivateCluster(port).start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


def run(admin: Any, names: list[str], faxes: int, idle: float) -> dict[str, Any]:
    """One measurement: ``names`` instances idle, then drain ``faxes``; the figures."""
    from faxd.sim import FaxageSimulator

    url = pg_helper.create_database(admin)
    try:
        with (
            FaxageSimulator(*SIM_LOGIN, latency=LATENCY) as sim,
            tempfile.TemporaryDirectory(prefix="faxd-instances-") as tmp,
        ):
            office = Office(
                Path(tmp), sim, url, lease_seconds=60, poll_interval=POLL_INTERVAL,
                concurrency=CONCURRENCY,
            )  # fmt: skip
            instances = [office.instance(name) for name in names]
            try:
                for instance in instances:
                    instance.start().wait_ready()
                time.sleep(2 * POLL_INTERVAL)  # start-up work (first polls, sweeps) is over
                before = len(office.requests("listfax"))
                time.sleep(idle)
                listed = len(office.requests("listfax")) - before
                cpu_before = [cpu_seconds(i.pid) for i in instances]
                here_before = time.process_time()
                busy_before = machine_busy_seconds()
                seeded = sim.seed_inbound(faxes)
                started = time.monotonic()
                wait_until(
                    all_faxes_done(office, seeded), 600, f"{faxes} faxes drained",
                    office=office, seen=office.fax_states, interval=0.02,
                )  # fmt: skip
                drain = time.monotonic() - started
                cpu = sum(cpu_seconds(i.pid) for i in instances) - sum(cpu_before)
                simulator_cpu = time.process_time() - here_before
                busy = machine_busy_seconds() - busy_before
                alive = all(instance.running for instance in instances)
                worked = office.worked_by("inbound_faxes")
            finally:
                for instance in instances:
                    if instance.running:
                        instance.stop()
                office.close()
            violations = list(sim.violations)
    finally:
        pg_helper.drop_database(admin, url)
    shares = {name: sum(1 for who in worked.values() if who == name) for name in names}
    return {
        "instances": len(names),
        "drain_seconds": round(drain, 3),
        "faxes_per_second": round(faxes / drain, 1),
        "faxes_by_instance": shares,
        # CPU seconds the faxd processes and this process (the simulator) used while
        # draining, against the drain's wall time times the machine's cores.
        "faxd_cpu_seconds": round(cpu, 2),
        "simulator_cpu_seconds": round(simulator_cpu, 2),
        # Everything the machine ran meanwhile: PostgreSQL, other work on a shared box.
        "machine_busy_cpu_seconds": round(busy, 2),
        "listfax_per_interval": round(listed * POLL_INTERVAL / idle, 2),
        "listfax_in_idle_window": listed,
        "violations": violations,
        "alive": alive,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faxes", type=int, default=300, help="faxes drained (300)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds watched (10)")
    args = parser.parse_args(argv)

    from faxd.logs import configure_logging

    configure_logging(level="warning")
    with postgres_admin() as admin:
        one = run(admin, ["solo"], args.faxes, args.idle)
        two = run(admin, ["left", "right"], args.faxes, args.idle)
    ratio = two["drain_seconds"] / one["drain_seconds"]
    cores = os.cpu_count() or 1
    checks = {
        "ratio": ratio <= TARGET_RATIO,
        "clean": not one["violations"] and not two["violations"],
        "alive": one["alive"] and two["alive"],
    }
    print(
        f"instances: {args.faxes} faxes, {LATENCY * 1000:.0f} ms latency, "
        f"concurrency {CONCURRENCY} each, PostgreSQL, poll_interval {POLL_INTERVAL:g} s"
    )
    for label, f in (("one instance", one), ("two instances", two)):
        print(
            f"  {label}: drained in {f['drain_seconds']:.2f} s ({f['faxes_per_second']} "
            f"faxes/s, by instance {f['faxes_by_instance']}); {f['listfax_per_interval']:.2f} "
            f"listfax per poll interval idle ({f['listfax_in_idle_window']} in {args.idle:g} s)"
        )
        print(
            f"    CPU while draining: faxd {f['faxd_cpu_seconds']:.2f} s, simulator "
            f"{f['simulator_cpu_seconds']:.2f} s, the whole machine "
            f"{f['machine_busy_cpu_seconds']:.2f} s of {f['drain_seconds'] * cores:.2f} s "
            f"({cores} cores x the drain)"
        )
    print(f"  two/one = {ratio:.3f} (target <= {TARGET_RATIO}): {verdict(checks['ratio'])}")
    if not checks["clean"]:
        print(f"  delete check violations: {one['violations'] + two['violations']}")
    passed = all(checks.values())
    path = write_results(
        "instances",
        {
            "faxes": args.faxes,
            "latency_s": LATENCY,
            "concurrency": CONCURRENCY,
            "poll_interval": POLL_INTERVAL,
            "idle_seconds": args.idle,
            "one": one,
            "two": two,
            "ratio": round(ratio, 3),
            "targets": {"ratio": TARGET_RATIO},
            "checks": checks,
            "passed": passed,
        },
    )
    print(f"{verdict(passed)}  (wrote {path})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
