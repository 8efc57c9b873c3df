"""Benchmark: how fast faxd drains a full inbox, against the bare minimum.

A provider's simulator (in this process) holds full-inbox faxes of 100 KB and
adds 20 ms to every answer, like a real link.  Three clients drain it, each in
a fresh child process so imports and start-up are not timed and the
simulator's own CPU does not share the client's interpreter:

(a) ``bare``: a sequential loop written with ``requests`` doing only what the
    provider needs - list, download to a file, delete (FAXAGE ``listfax``,
    ``getfax``, ``delfax``; VoIP.ms ``getFaxMessages``, ``getFaxMessagePDF``,
    ``deleteFaxMessage``; iFax keeps faxes, so only ``fax-list-all`` page by
    page and ``fax-download``) - the floor a hand-written cron script reaches;
(b) faxd's inbound pipeline with ``concurrency = 1`` (database ledger,
    verified spool, a folder action, all the fsyncs);
(c) the same with ``concurrency = 4``.

Targets: FAXAGE (issue 6, 500 faxes) b/a <= 1.15 and c/a <= 0.35; VoIP.ms and
iFax (issue 11, 150 faxes) c/a <= 0.35, b/a shown without a target.
Run: ``.venv/bin/python bench/ingest.py [--provider faxage|voipms|ifax] [--faxes N]``;
results go to ``bench/results/ingest.json`` (FAXAGE) or ``ingest_<provider>.json``.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchlib import SIM_LOGIN, child_env, faxd_config, verdict, write_results

FAXES = 500
#: Faxes per run by provider (issue 11 sets 150 for VoIP.ms and iFax).
DEFAULT_FAXES = {"faxage": FAXES, "voipms": 150, "ifax": 150}
FAX_BYTES = 100 * 1024
LATENCY = 0.020
TARGET_B = 1.15
TARGET_C = 0.35
#: The lines the inbox is seeded on (iFax writes E.164).
LINES = ("3035550101", "3035550102")


# ------------------------------------------------------------------ the children


def bare_loop(base_url: str, out: Path) -> dict[str, Any]:
    """(a) for FAXAGE: listfax, then getfax to a file and delfax for each fax, one by one."""
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


def bare_voipms(settings: dict[str, Any], out: Path) -> dict[str, Any]:
    """(a) for VoIP.ms: getFaxMessages, then getFaxMessagePDF to a file and
    deleteFaxMessage for each fax, one by one."""
    import requests

    url = settings["base_url"]
    login = {"api_username": settings["username"], "api_password": settings["password"]}
    today = datetime.now(ZoneInfo(settings["timezone"])).date()
    session = requests.Session()
    started = time.perf_counter()
    listing = session.get(url, params={
        **login, "method": "getFaxMessages", "folder": "INBOX",
        "from": str(today - timedelta(days=1)), "to": str(today),
    }).json()
    ids = [fax["id"] for fax in listing.get("faxes", [])]
    for fax_id in ids:
        answer = session.get(
            url, params={**login, "method": "getFaxMessagePDF", "id": fax_id}
        ).json()
        (out / f"{fax_id}.pdf").write_bytes(base64.b64decode(answer["message_base64"]))
        deleted = session.get(
            url, params={**login, "method": "deleteFaxMessage", "id": fax_id}
        ).json()
        if deleted.get("status") != "success":
            raise SystemExit(f"deleteFaxMessage {fax_id} refused: {deleted}")
    return {"seconds": time.perf_counter() - started, "faxes": len(ids)}


def bare_ifax(settings: dict[str, Any], out: Path) -> dict[str, Any]:
    """(a) for iFax (keep mode): fax-list-all page by page, then fax-download each to a file."""
    import requests

    url = settings["base_url"] + "/customer/inbound/"
    headers = {"accessToken": settings["access_token"]}
    today = datetime.now(UTC).date()
    window = {
        "startDate": (today - timedelta(days=1)).strftime("%m/%d/%Y"),
        "endDate": today.strftime("%m/%d/%Y"),
    }
    session = requests.Session()
    started = time.perf_counter()
    faxes: list[dict[str, Any]] = []
    while True:
        body = {**window, **({"lastFaxId": str(faxes[-1]["jobId"])} if faxes else {})}
        page = session.post(url + "fax-list-all", json=body, headers=headers).json()["data"]
        if not page:
            break
        faxes += page
    for fax in faxes:
        answer = session.post(
            url + "fax-download",
            json={"jobId": fax["jobId"], "transactionId": fax["transactionId"]},
            headers=headers,
        ).json()
        (out / f"{fax['jobId']}.pdf").write_bytes(base64.b64decode(answer["data"]))
    return {"seconds": time.perf_counter() - started, "faxes": len(faxes)}


def faxd_pipeline(
    base_url: str, work: Path, concurrency: int, expected: int, provider: str
) -> dict[str, Any]:
    """(b)/(c): faxd's own pipeline, built the way ``faxd run`` builds it."""
    from faxd.app import build_app
    from faxd.config import load_config
    from faxd.logs import configure_logging

    log = (work / "faxd.log").open("w")  # info lines, as the daemon writes them
    configure_logging(level="info", stream=log, json=True)

    section = None if provider == "faxage" else (work / "provider.toml").read_text()
    config = load_config(
        faxd_config(
            work / "faxd.toml",
            base_url=base_url,
            work=work,
            inbound=f'concurrency = {concurrency}\npoll_interval = 5\nproviders = ["{provider}"]',
            section=section,
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
    if args.child == "faxd":
        figures = faxd_pipeline(args.base_url, work, args.concurrency, args.faxes, args.provider)
    elif args.provider == "faxage":
        figures = bare_loop(args.base_url, work)
    else:
        settings = tomllib.loads((work / "provider.toml").read_text())[args.provider]
        bare = bare_voipms if args.provider == "voipms" else bare_ifax
        figures = bare(settings, work)
    print(json.dumps(figures))
    return 0


# ------------------------------------------------------------------ the parent


def run_variant(
    sim: Any, provider: str, faxes: int, name: str, extra: list[str]
) -> dict[str, Any]:
    """Seed the inbox, let one child drain it, check that it did."""
    from faxd.sim.kits import KITS

    lines = tuple("+1" + n for n in LINES) if provider == "ifax" else LINES
    seeded = sim.seed_inbound(faxes, dnis=lines, size=FAX_BYTES)
    with tempfile.TemporaryDirectory(prefix=f"faxd-ingest-{name}-") as work:
        if provider != "faxage":
            (Path(work) / "provider.toml").write_text(KITS[provider].section(sim, timeout=60))
        answer = subprocess.run(
            [sys.executable, __file__, "--child", *extra, "--base-url", sim.base_url,
             "--work", work, "--faxes", str(faxes), "--provider", provider],
            env=child_env(), capture_output=True, text=True, check=False,
        )
        if answer.returncode != 0:
            raise SystemExit(f"{name} failed:\n{answer.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
    # Released: deleted on FAXAGE and VoIP.ms, downloaded at least once on iFax.
    left = sum(not f.released for f in seeded)
    if left or figures["faxes"] != faxes:
        raise SystemExit(
            f"{name}: drained {figures['faxes']} of {faxes}, {left} not released on {provider}"
        )
    forget(sim, seeded)
    figures["faxes_per_second"] = faxes / figures["seconds"]
    return figures


def forget(sim: Any, seeded: list[Any]) -> None:
    """Drop the drained faxes (100 KB each) so the next run lists only its own."""
    gone = {id(fax) for fax in seeded}
    with sim.lock:
        if isinstance(sim.faxes, dict):
            for key in [key for key, fax in sim.faxes.items() if id(fax) in gone]:
                del sim.faxes[key]
        else:  # iFax keeps every fax: its list must be cut by hand
            sim.faxes[:] = [fax for fax in sim.faxes if id(fax) not in gone]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider", choices=sorted(DEFAULT_FAXES), default="faxage",
        help="whose simulator to drain (faxage)",
    )
    parser.add_argument("--faxes", type=int, help="faxes per run (500; 150 for voipms, ifax)")
    parser.add_argument("--child", choices=["bare", "faxd"], help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.faxes = args.faxes or DEFAULT_FAXES[args.provider]
    if args.child:
        return child(args)

    from faxd.logs import configure_logging
    from faxd.sim import FaxageSimulator
    from faxd.sim.kits import KITS

    configure_logging(level="warning")  # not the simulator's line per request
    provider = args.provider
    print(f"ingest ({KITS[provider].label}): {args.faxes} faxes of {FAX_BYTES // 1024} KB, "
          f"{LATENCY * 1000:.0f} ms added per request")
    runs: dict[str, dict[str, Any]] = {}
    if provider == "faxage":
        sim = FaxageSimulator(*SIM_LOGIN, latency=LATENCY).start()
    else:
        sim = KITS[provider].start(latency=LATENCY)
    try:
        for name, extra in (
            ("a_bare", ["bare"]),
            ("b_faxd_c1", ["faxd", "--concurrency", "1"]),
            ("c_faxd_c4", ["faxd", "--concurrency", "4"]),
        ):
            runs[name] = run_variant(sim, provider, args.faxes, name, extra)
            r = runs[name]
            print(f"  {name:10} {r['seconds']:7.2f} s  {r['faxes_per_second']:6.1f} faxes/s")
    finally:
        sim.stop()
    bare = runs["a_bare"]["seconds"]
    ratio_b = runs["b_faxd_c1"]["seconds"] / bare
    ratio_c = runs["c_faxd_c4"]["seconds"] / bare
    # Issue 11 sets no b/a target for VoIP.ms and iFax: shown, not judged.
    target_b = TARGET_B if provider == "faxage" else None
    passed_b = target_b is None or ratio_b <= target_b
    passed_c = ratio_c <= TARGET_C
    shown_b = f"target <= {target_b}): {verdict(passed_b)}" if target_b else "no target)"
    print(f"  b/a = {ratio_b:.3f} ({shown_b}")
    print(f"  c/a = {ratio_c:.3f} (target <= {TARGET_C}): {verdict(passed_c)}")
    path = write_results(
        "ingest" if provider == "faxage" else f"ingest_{provider}",
        {
            "provider": provider,
            "faxes": args.faxes,
            "fax_bytes": FAX_BYTES,
            "latency_s": LATENCY,
            "runs": runs,
            "ratio_b_a": round(ratio_b, 3),
            "ratio_c_a": round(ratio_c, 3),
            "targets": {"ratio_b_a": target_b, "ratio_c_a": TARGET_C},
            "passed": passed_b and passed_c,
        },
    )
    print(f"{verdict(passed_b and passed_c)}  (wrote {path})")
    return 0 if passed_b and passed_c else 1


if __name__ == "__main__":
    sys.exit(main())
