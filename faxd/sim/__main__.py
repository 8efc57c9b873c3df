"""Run a provider simulator standalone, for demos and for pointing a test install at it.

    python -m faxd.sim --host 127.0.0.1 --port 8025 --seed 12 \\
        --username demo --company 12345 --password demo-password
    python -m faxd.sim --provider voipms ...

Without ``--provider`` (or with ``--provider faxage``) it is the FAXAGE one: it
seeds a few received faxes, prints where it listens (never the password) and
serves until SIGINT or SIGTERM.  Any other provider's simulator is its package's
``sim`` module, imported only when asked for; the rest of the command line is
its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from faxd.logs import configure_logging
from faxd.providers.base import PROVIDER_NAMES
from faxd.sim.httpbase import serve_until_signalled
from faxd.sim.sending import STATUS_ORDERS
from faxd.sim.server import FaxageSimulator


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m faxd.sim``."""
    parser = argparse.ArgumentParser(
        prog="python -m faxd.sim",
        description="Serve a simulated FAXAGE account over HTTP (for tests and demos); "
        "--provider voipms|ifax|faxnummer runs another provider's simulator instead.",
    )
    parser.add_argument("--provider", choices=["faxage"], default="faxage")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8025, help="port to bind (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for fault rates")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--company", default="12345")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--faxes", type=int, default=3, help="received faxes to seed (default 3)")
    parser.add_argument(
        "--job-seconds", type=float, default=5.0, help="seconds a sent job stays pending"
    )
    parser.add_argument(
        "--status-order",
        choices=sorted(STATUS_ORDERS),
        default="2014",
        help="order of status's optional columns: 2014 (the documents) or 2009 (pagecount last)",
    )
    parser.add_argument(
        "--extra-columns",
        type=int,
        default=0,
        help="columns to append to every listfax and status line (default 0)",
    )
    parser.add_argument(
        "--push-url",
        metavar="URL",
        help="post each new fax here, as FAXAGE's inbound push does (faxd: its hook URL)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    import_module: Callable[[str], ModuleType] = importlib.import_module,
) -> int:
    """Run the simulator ``--provider`` names (FAXAGE by default); returns the exit status."""
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--provider", choices=PROVIDER_NAMES, default="faxage")
    chosen, rest = chooser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if chosen.provider == "faxage":
        return serve_faxage(rest)
    module_name = f"faxd.providers.{chosen.provider}.sim"
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            raise  # the simulator is there but something it imports is not
        print(
            f"this faxd has no {chosen.provider} simulator ({module_name} is missing); "
            f"choose --provider from the installed ones, e.g. faxage",
            file=sys.stderr,
        )
        return 2
    status: int = module.main(rest)
    return status


def serve_faxage(argv: Sequence[str]) -> int:
    """Serve the FAXAGE simulator until interrupted; returns the exit status."""
    args = build_parser().parse_args(argv)
    # Logs go to stderr: stdout carries only the banner, printed once the faxes are seeded,
    # which is what a script (or a test) waits for before it calls the simulator.
    configure_logging(level="info")
    if args.faxes < 0 or args.extra_columns < 0:
        print("--faxes and --extra-columns must be 0 or more", file=sys.stderr)
        return 2
    sim = FaxageSimulator(
        args.username,
        args.company,
        args.password,
        host=args.host,
        port=args.port,
        seed=args.seed,
        job_seconds=args.job_seconds,
    )
    sim.status_order = args.status_order
    sim.extra_columns = args.extra_columns
    sim.push_url = args.push_url
    return serve_until_signalled(
        sim,
        label="FAXAGE",
        banner=lambda: (
            f"FAXAGE simulator listening on {sim.base_url} "
            f"(username {args.username!r}, company {args.company!r}); "
            f"base_url for faxd: {sim.base_url}"
        ),
        prepare=lambda: sim.seed_inbound(args.faxes),
    )


if __name__ == "__main__":
    sys.exit(main())
