"""Benchmark: how fast faxd drains a full inbox, against the bare minimum.

The FAXAGE simulator (in this process) holds 500 faxes of 100 KB and adds 20 ms
to every answer, like a real link.  Three clients drain it, each in a fresh
child process so imports and start-up are not timed and the simulator's own
CPU does not share the client's interpreter:

(a) ``bare``: a sequential loop written with ``requests`` doing only
    ``listfax``, ``getfax`` to a file and ``delfax`` - the floor a
    hand-written cron script reaches;
(b) faxd's inbound pipeline with ``concurrency = 1`` (database ledger,
    verified spool, a folder action, all the fsyncs);
(c) the same with ``concurrency = 4``.

Targets (issue 6): b/a <= 1.15 (the bookkeeping costs at most 15%) and
c/a <= 0.35.  Run: ``.venv/bin/python bench/ingest.py [--faxes 500]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import SIM_LOGIN, child_env, faxd_config, verdict, write_results

FAXES = 500
FAX_BYTES = 100 * 1024
LATENCY = 0.020
TARGET_B = 1.15
TARGET_C = 0.35


# ------------------------------------------------------------------ the children


def bare_loop(base_url: str, out: Path) -> dict[str, Any]:
    """(a): listfax, then getfax to a file and delfax for each fax, one by one."""
    import requests

    username, company, password = SIM_LOGIN
    login = {"username": username, "company": company, "password": password}
    url = f"{base_url}/httpsfax.php"
    session = requests.Session()
    started = time.perf_counter()
    listing = session.post(
        url,
        data={**login, "operation": "listfax", "starttime": "1", "filename": "1", "pagecount": "1"},
    ).text
    recvids = [] if listing.startswith("ERR") else [
        int(line.split("\t", 1)[0]) for line in listing.splitlines() if line.strip()
    ]
    for recvid in recvids:
        with session.post(
            url, data={**login, "operation": "getfax", "faxid": str(recvid)}, stream=True
        ) as answer, (out / f"{recvid}.pdf").open("wb") as target:
            for chunk in answer.iter_content(64 * 1024):
                target.write(chunk)
        deleted = session.post(url, data={**login, "operation": "delfax", "faxid": str(recvid)})
        if deleted.text.startswith("ERR"):
            raise SystemExit(f"delfax {recvid} refused: {deleted.text[:80]}")
    return {"seconds": time.perf_counter() - started, "faxes": len(recvids)}


def faxd_pipeline(base_url: str, work: Path, concurrency: int, expected: int) -> dict[str, Any]:
    """(b)/(c): faxd's own pipeline, built the way ``faxd run`` builds it."""
    from faxd.app import build_app
    from faxd.config import load_config
    from faxd.logs import configure_logging

    log = (work / "faxd.log").open("w")  # info lines, as the daemon writes them
    configure_logging(level="info", stream=log, json=True)

    config = load_config(
        faxd_config(
            work / "faxd.toml",
            base_url=base_url,
            work=work,
            inbound=f"concurrency = {concurrency}\npoll_interval = 5",
        ),
        env={},
    )
    app = build_app(config)  # migrates the database: not timed
    assert app.pipeline is not None
    done = polls = 0
    started = time.perf_counter()
    while done < expected and polls < 5:
        outcome = app.pipeline.poll()
        done += outcome.done
        polls += 1
    seconds = time.perf_counter() - started
    app.close()
    log.close()
    return {"seconds": seconds, "faxes": done, "polls": polls}


def child(args: argparse.Namespace) -> int:
    work = Path(args.work)
    if args.child == "bare":
        figures = bare_loop(args.base_url, work)
    else:
        figures = faxd_pipeline(args.base_url, work, args.concurrency, args.faxes)
    print(json.dumps(figures))
    return 0


# ------------------------------------------------------------------ the parent


def run_variant(sim: Any, faxes: int, name: str, extra: list[str]) -> dict[str, Any]:
    """Seed the inbox, let one child drain it, check that it did."""
    seeded = sim.seed_inbound(faxes, dnis=("3035550101", "3035550102"), size=FAX_BYTES)
    with tempfile.TemporaryDirectory(prefix=f"faxd-ingest-{name}-") as work:
        answer = subprocess.run(
            [sys.executable, __file__, "--child", *extra, "--base-url", sim.base_url,
             "--work", work, "--faxes", str(faxes)],
            env=child_env(), capture_output=True, text=True, check=False,
        )
        if answer.returncode != 0:
            raise SystemExit(f"{name} failed:\n{answer.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
    left = sum(not f.deleted for f in seeded)
    if left or figures["faxes"] != faxes:
        raise SystemExit(f"{name}: drained {figures['faxes']} of {faxes}, {left} left on FAXAGE")
    with sim.lock:  # forget the drained faxes (100 KB each)
        for fax in seeded:
            sim.faxes.pop(fax.recvid, None)
    figures["faxes_per_second"] = faxes / figures["seconds"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faxes", type=int, default=FAXES, help=f"faxes per run ({FAXES})")
    parser.add_argument("--child", choices=["bare", "faxd"], help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    from faxd.logs import configure_logging
    from faxd.sim import FaxageSimulator

    configure_logging(level="warning")  # not the simulator's line per request
    print(f"ingest: {args.faxes} faxes of {FAX_BYTES // 1024} KB, "
          f"{LATENCY * 1000:.0f} ms added per request")
    runs: dict[str, dict[str, Any]] = {}
    with FaxageSimulator(*SIM_LOGIN, latency=LATENCY) as sim:
        for name, extra in (
            ("a_bare", ["bare"]),
            ("b_faxd_c1", ["faxd", "--concurrency", "1"]),
            ("c_faxd_c4", ["faxd", "--concurrency", "4"]),
        ):
            runs[name] = run_variant(sim, args.faxes, name, extra)
            r = runs[name]
            print(f"  {name:10} {r['seconds']:7.2f} s  {r['faxes_per_second']:6.1f} faxes/s")
    bare = runs["a_bare"]["seconds"]
    ratio_b = runs["b_faxd_c1"]["seconds"] / bare
    ratio_c = runs["c_faxd_c4"]["seconds"] / bare
    passed_b, passed_c = ratio_b <= TARGET_B, ratio_c <= TARGET_C
    print(f"  b/a = {ratio_b:.3f} (target <= {TARGET_B}): {verdict(passed_b)}")
    print(f"  c/a = {ratio_c:.3f} (target <= {TARGET_C}): {verdict(passed_c)}")
    path = write_results(
        "ingest",
        {
            "faxes": args.faxes,
            "fax_bytes": FAX_BYTES,
            "latency_s": LATENCY,
            "runs": runs,
            "ratio_b_a": round(ratio_b, 3),
            "ratio_c_a": round(ratio_c, 3),
            "targets": {"ratio_b_a": TARGET_B, "ratio_c_a": TARGET_C},
            "passed": passed_b and passed_c,
        },
    )
    print(f"{verdict(passed_b and passed_c)}  (wrote {path})")
    return 0 if passed_b and passed_c else 1


if __name__ == "__main__":
    sys.exit(main())
