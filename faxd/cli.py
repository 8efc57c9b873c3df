"""The ``faxd`` command: the daemon, the demo and the operator's tools.

This module only parses arguments and dispatches; heavy libraries (SQLAlchemy,
requests, structlog, APScheduler, watchdog) are imported inside the handlers,
so ``faxd --help`` answers at once (``bench/startup.py`` measures it).  The
``faxd faxage ...`` account operations are in :mod:`faxd.cli_faxage`.

Exit codes: 0 ok, 1 a runtime failure (FAXAGE unreachable, a job that cannot
be retried...), 2 bad usage or a bad config.  Expected errors are one line on
standard error — never a traceback, never a secret.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faxd import __version__

if TYPE_CHECKING:
    from faxd.config import Config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``faxd`` with ``argv`` (default: the process arguments); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from faxd.errors import ConfigError, FaxdError

    try:
        start_logging(getattr(args, "log_level", "warning"))
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"faxd: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except FaxdError as exc:
        print(f"faxd: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `faxd inbox | head`
        return EXIT_OK
    except Exception as exc:  # a bug or a broken system: still one line, still redacted
        from faxd.redact import redact

        detail = " ".join(redact(str(exc)).split())[:300]
        print(
            f"faxd: unexpected {type(exc).__name__}: {detail} (check disk space and the "
            "permissions of the database and fax folders; if that is not it, please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


# -- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each sub-command names its handler."""
    parser = argparse.ArgumentParser(
        prog="faxd", description="Fax server daemon for FAXAGE: inbound routing and an outbox."
    )
    parser.add_argument("--version", action="version", version=f"faxd {__version__}")
    _config_option(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _config_option(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name: str, handler: Handler, text: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=text, description=text, **kw)
        p.set_defaults(handler=handler)
        return p

    p = command("run", _run, "run the daemon (under systemd: Type=notify)")
    p.set_defaults(log_level="info")
    p.add_argument("--once", action="store_true", help="one poll and one outbound pass, then exit")
    p = command("check-config", _check_config, "check the config file and show what it means")
    p.add_argument(
        "--online",
        action="store_true",
        help="also log in to each configured provider with a read that changes nothing",
    )
    p = command("db", _db_help, "database maintenance")
    db_sub = p.add_subparsers(metavar="ACTION")
    up = db_sub.add_parser("upgrade", parents=[common], help="migrate the database schema")
    up.set_defaults(handler=_db_upgrade, log_level="info")

    p = command("inbox", _inbox, "list received faxes, newest first")
    p.add_argument("--failed", action="store_true", help="only faxes that gave up")
    p.add_argument(
        "--problems",
        action="store_true",
        help="listfax and status lines FAXAGE sent that faxd cannot read (to ask FAXAGE about)",
    )
    p.add_argument(
        "--since", type=date_arg, metavar="DATE", help="received on/after YYYY-MM-DD[ HH:MM]"
    )
    p.add_argument(
        "--limit", type=_positive, default=100, help="show at most N faxes (default 100)"
    )
    add_json_option(p)
    p = command("jobs", _jobs, "list outbound fax jobs")
    p.add_argument("--state", help="only jobs in this state (queued, submitted, sent, failed...)")
    add_json_option(p)
    p = command("retry", _retry, "retry a failed fax (REMOTE_ID) or a failed job (--job ID)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("remote_id", nargs="?", help="the remote id faxd inbox shows")
    target.add_argument("--job", type=int, metavar="ID", help="the job number faxd jobs shows")
    p.add_argument(
        "--provider", metavar="NAME",
        help="the provider faxd inbox shows (needed only when two providers have that id)",
    )  # fmt: skip
    p = command("cancel", _cancel, "cancel a queued or submitted outbound job")
    p.add_argument("job", type=int, metavar="JOB_ID")
    p = command("send", _send, "queue files to fax (the running daemon sends them)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument(
        "--to", required=True, metavar="NUMBER",
        help="fax number, e.g. 3035551212 or +49 30 1234567 (national: read in [outbound] country)"
    )
    p.add_argument("--name", help="recipient name on the cover (32 characters at most)")
    p = command("notify", _notify, "admin notifications ([notify])")
    p.add_argument("--test", action="store_true", help="send a test mail to [notify] email now")
    p = command("cleanup", _cleanup, "remove old files from sent/ and failed/ and old records")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p = command("status", _status, "what the daemon last did and what is pending")
    add_json_option(p)
    command("health", _health, "is polling working? JSON as /healthz says it; exit 0 or 1")

    from faxd import cli_faxage  # here, not at the top: it builds on this module's helpers

    p = command("faxage", cli_faxage.faxage_help, "FAXAGE account operations")
    cli_faxage.add_faxage_commands(p, common)

    p = command("demo", _demo, "see faxd work against built-in provider simulators")
    p.add_argument(
        "--provider", default="faxage",
        choices=("faxage", "voipms", "ifax", "faxnummer", "all"),
        help="which provider's simulator (default faxage); all: FAXAGE and VoIP.ms receive, "
        "faxnummer.de sends",
    )
    p.add_argument("--keep", action="store_true", help="run until Ctrl-C instead of stopping")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to run (default 20)")
    p.add_argument("--dir", type=Path, help="folder to put the demo in (default: a new temp dir)")
    return parser


def _config_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="PATH",
        help="config file (default: $FAXD_CONFIG or /etc/faxd/faxd.toml)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def date_arg(text: str) -> datetime:
    for layout in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a date; write it as 2024-05-01 or '2024-05-01 13:30'"
    )


def number_arg(text: str) -> str:
    """A FAXAGE number argument, normalised to 10 digits (a bad one is a usage error)."""
    from faxd.phone import nanp_number

    try:
        return nanp_number(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


# -- helpers the handlers share ----------------------------------------------------------


def load(args: argparse.Namespace) -> Config:
    """The config named by ``--config`` (or ``$FAXD_CONFIG``, or the default path)."""
    from faxd.config import load_config

    return load_config(getattr(args, "config", None))


def start_logging(level: str = "info") -> None:
    """Structured, redacted logs on standard error (stdout stays for output)."""
    from faxd.logs import configure_logging

    configure_logging(level=level)


def print_out(text: str) -> None:
    """Print command output (kept apart so handlers read alike)."""
    print(text)


# -- handlers ----------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    config = load(args)
    import structlog

    for warning in config.warnings:  # the unit's limits: see faxd.config.sandbox
        structlog.get_logger("faxd.config").warning("config.warning", problem=warning)
    from faxd.daemon import STOP_DEADLINE_SECONDS, Daemon
    from faxd.notify import Notifier, watchdog_interval
    from faxd.runlock import RunLock

    daemon = Daemon(
        config,
        notifier=Notifier.from_env(),
        watchdog_seconds=watchdog_interval(),
        stop_deadline=STOP_DEADLINE_SECONDS,
    )
    with RunLock(config.inbound.spool_dir):
        return daemon.run_once() if args.once else daemon.run()


def _check_config(args: argparse.Namespace) -> int:
    config = load(args)
    from faxd.check_config import check_online, render_config

    print_out(render_config(config))
    if not args.online:
        return EXIT_OK
    lines, all_ok = check_online(config)
    print_out("Online check\n" + "\n".join(f"  {line}" for line in lines))
    return EXIT_OK if all_ok else EXIT_FAILURE


def _db_help(args: argparse.Namespace) -> int:
    print("faxd db: say what to do, e.g. `faxd db upgrade`", file=sys.stderr)
    return EXIT_USAGE


def _db_upgrade(args: argparse.Namespace) -> int:
    from faxd.app import open_database

    db = open_database(load(args), check=False)
    try:
        before = db.current_revision()
        db.upgrade()
        after = db.current_revision()
    finally:
        db.dispose()
    if before == after:
        print_out(f"database already at revision {after}")
    else:
        print_out(f"database upgraded from {before or 'empty'} to {after}")
    return EXIT_OK


def _inbox(args: argparse.Namespace) -> int:
    from faxd import tables
    from faxd.app import open_database

    db = open_database(load(args))
    try:
        if args.problems:
            rows = tables.problem_rows(db, limit=args.limit)
        else:
            rows = tables.inbox_rows(
                db, failed_only=args.failed, since=args.since, limit=args.limit
            )
    finally:
        db.dispose()
    if args.problems and not args.json:
        print_out(tables.render_problems(rows))
        return EXIT_OK
    if args.json:
        print_out(tables.render_json(rows))
        return EXIT_OK
    empty = "no failed faxes" if args.failed else "no faxes recorded yet"
    notes = [row["last_error"] for row in rows]
    print_out(tables.render_table(tables.INBOX_COLUMNS, rows, notes=notes, empty=empty))
    return EXIT_OK


def _jobs(args: argparse.Namespace) -> int:
    from faxd import tables
    from faxd.app import open_database
    from faxd.outbound.commands import list_jobs
    from faxd.store.states import JobState

    if args.state is not None and args.state not in {s.value for s in JobState}:
        names = ", ".join(s.value for s in JobState)
        print(f"faxd: unknown job state {args.state!r}; use one of: {names}", file=sys.stderr)
        return EXIT_USAGE
    db = open_database(load(args))
    try:
        rows = [tables.job_row(job) for job in list_jobs(db, args.state)]
    finally:
        db.dispose()
    if args.json:
        print_out(tables.render_json(rows))
        return EXIT_OK
    notes = [row["last_error"] if row["state"] != "sent" else None for row in rows]
    print_out(tables.render_table(tables.JOB_COLUMNS, rows, notes=notes, empty="no jobs"))
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    from faxd import app as wiring
    from faxd import tables
    from faxd.errors import FaxdError

    config = load(args)
    if args.job is not None:
        from faxd.outbound.commands import retry_job

        db = wiring.open_database(config)
        try:
            job = retry_job(db, args.job)
        finally:
            db.dispose()
        print_out(f"job {job.id} queued again; the daemon sends it within seconds")
        return EXIT_OK
    built = wiring.build_app(config, upgrade=False)  # refuses an old schema with what to do
    try:
        if built.pipeline is None:
            print("faxd: inbound is disabled in the config; nothing to retry", file=sys.stderr)
            return EXIT_FAILURE
        provider = args.provider or tables.fax_provider(built.db, args.remote_id)
        pipeline = built.pipeline_for(provider)
        if pipeline is None:
            listed = ", ".join(built.pipelines)
            raise FaxdError(
                f"{provider} is not one of [inbound] providers ({listed}) in {config.path}; "
                "add it there to retry its faxes"
            )
        state = pipeline.retry(args.remote_id)
    finally:
        built.close()
    print_out(
        f"{provider} fax {args.remote_id} is {state.value} again; "
        "the daemon resumes it at its next poll"
    )
    return EXIT_OK


def _cancel(args: argparse.Namespace) -> int:
    from faxd import app as wiring
    from faxd.outbound.commands import cancel_job

    config = load(args)
    built = wiring.build_app(config, upgrade=False)  # refuses an old schema with what to do
    try:
        sender = wiring.make_sender(config, built.client)
        job = cancel_job(built.db, sender, args.job, config=config.outbound)
    finally:
        built.close()
    where = f"; the file is in {job.final_path}" if job.final_path else ""
    print_out(f"job {job.id} cancelled{where}")
    return EXIT_OK


def _send(args: argparse.Namespace) -> int:
    from faxd import app as wiring
    from faxd.app import open_database
    from faxd.outbound.accepted import Acceptance
    from faxd.outbound.commands import queue_files
    from faxd.phone import format_number, parse_number

    config = load(args)
    try:  # read only now: a national number depends on [outbound] country
        number = parse_number(args.to, config.outbound.country)
    except ValueError as exc:
        print(f"faxd send: argument --to: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # What the sending provider takes (or faxd converts), checked before anything is queued.
    caps = wiring.make_sender(config).capabilities
    accepts = Acceptance(config.outbound_provider, caps.send_types)
    db = open_database(config)
    try:
        from faxd.store.claims import Claims, Instance

        ids = queue_files(
            args.files, number, args.name, config=config.outbound, db=db, accepts=accepts,
            claims=Claims(db, Instance.of(config.database)),
        )  # fmt: skip
    finally:
        db.dispose()
    to = format_number(number)
    for job_id, path in zip(ids, args.files, strict=True):
        print_out(f"job {job_id}: {path.name} -> {to} queued")
    return EXIT_OK


def _notify(args: argparse.Namespace) -> int:
    from faxd.alerts.mailer import send_test
    from faxd.errors import DeliveryError
    from faxd.smtp import SmtpSender

    config = load(args)
    if config.notify is None:
        print_out(
            f"notifications are not configured: add a [notify] section with email = "
            f'["it@example.com"] (and an [smtp] section) to {config.path}'
        )
        return EXIT_USAGE
    if not args.test:
        print_out(f"[notify] mails {', '.join(config.notify.email)}; "
                  "`faxd notify --test` sends a test mail now")  # fmt: skip
        return EXIT_OK
    assert config.smtp is not None  # [notify] needs [smtp]; the loader checked it
    try:
        answer = send_test(config.notify, SmtpSender(config.smtp))
    except DeliveryError as exc:
        print(f"faxd: the test mail was not sent: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    print_out(f"test mail sent to {', '.join(config.notify.email)}: the server answered {answer}")
    return EXIT_OK


def _cleanup(args: argparse.Namespace) -> int:
    from faxd.app import open_database
    from faxd.retention import Retention

    config = load(args)
    if config.retention is None:
        print_out(
            f"retention is not configured, so nothing is removed: add a [retention] section "
            f"(sent_days, failed_days, records_days) to {config.path}"
        )
        return EXIT_OK
    db = open_database(config)
    try:
        report = Retention(db, config.retention, config.outbound).run(dry_run=args.dry_run)
    finally:
        db.dispose()
    print_out("\n".join(report.lines()))
    return EXIT_FAILURE if report.errors else EXIT_OK


def _health(args: argparse.Namespace) -> int:
    """The ``/healthz`` JSON from the database (the watcher cannot be seen from here)."""
    from faxd import tables
    from faxd.app import open_database
    from faxd.web.health import check_health

    config = load(args)
    db = open_database(config)
    try:
        health = check_health(db, config, now=datetime.now(UTC))
    finally:
        db.dispose()
    print_out(tables.render_json(health.report))
    return EXIT_OK if health.ok else EXIT_FAILURE


def _status(args: argparse.Namespace) -> int:
    from faxd import tables
    from faxd.app import open_database

    config = load(args)
    db = open_database(config)
    try:
        report = tables.status_report(db, config)
    finally:
        db.dispose()
    if args.json:
        print_out(tables.render_json(report))
    else:
        print_out(tables.render_status(report))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from faxd.demo import run_demo

    return int(
        run_demo(
            provider=args.provider,
            seconds=None if args.keep else args.seconds,
            directory=args.dir,
        )
    )


if __name__ == "__main__":  # pragma: no cover - `python -m faxd` goes through __main__
    sys.exit(main())
