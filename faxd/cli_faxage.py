"""``faxd faxage ...``: the FAXAGE account operations on the command line.

Listing and provisioning numbers, call detail records, busying out a line:
operator tools that neither fax flow uses (the client's
:class:`~faxd.providers.faxage.account.AccountOperations`).  They live apart from
:mod:`faxd.cli` so that module keeps to the everyday commands.  Like it, this
module imports nothing heavy until a handler runs: ``faxd --help`` builds
these parsers too.

A list answer with lines FAXAGE sent that cannot be read still prints what
could be read; each skipped line gets a note on stderr (``skipped line N:
reason: text``) so the operator can quote it to FAXAGE.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from faxd.cli import (
    EXIT_OK,
    EXIT_USAGE,
    add_json_option,
    date_arg,
    load,
    number_arg,
    print_out,
)

__all__ = ["add_faxage_commands", "faxage_help"]


def add_faxage_commands(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """One sub-command of ``faxd faxage`` per account operation, all run by one handler."""
    sub = parser.add_subparsers(metavar="OPERATION")

    def op(name: str, text: str, *dids: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.set_defaults(handler=_faxage, operation=name)
        for did in dids:
            p.add_argument(did, type=number_arg, metavar="NUMBER", help="e.g. 3035550101")
        add_json_option(p)
        return p

    op("listlines", "the numbers on this account")
    op("disabledid", "busy out a number so no fax can come in on it", "did")
    op("enabledid", "let faxes come in on a number again", "did")
    op("portable", "whether a number can be ported to FAXAGE", "did")
    p = op("getcdr", "call detail records between two dates (or after --nuidgt)")
    p.add_argument("--begin", type=date_arg, metavar="DATE")
    p.add_argument("--end", type=date_arg, metavar="DATE")
    p.add_argument("--nuidgt", type=int, metavar="N", help="records after this record id")
    p.add_argument("--did", type=number_arg, metavar="NUMBER", help="only calls on this number")
    op("listac", "area codes with numbers available")
    op("listnpanxx", "localities with numbers available").add_argument("ac", nargs="?")
    p = op("listdids", "numbers available to provision")
    p.add_argument("--ac", metavar="AREACODE")
    p.add_argument("--npanxx", metavar="NPANXX")
    op("provdid", "add a number to this account", "did")
    op("deprovdid", "remove a number from this account", "did")


def faxage_help(args: argparse.Namespace) -> int:
    """``faxd faxage`` without an operation: a usage error saying what to add."""
    print("faxd faxage: say which operation, e.g. `faxd faxage listlines`", file=sys.stderr)
    return EXIT_USAGE


def _faxage(args: argparse.Namespace) -> int:
    """Run the operation ``args.operation`` names and print its answer (or JSON)."""
    import dataclasses

    from faxd import tables
    from faxd.app import make_client
    from faxd.phone import format_number
    from faxd.providers.faxage.records import MalformedLine

    with make_client(load(args).require_faxage("faxd faxage"), retries=1) as client:
        name, did = str(args.operation), str(getattr(args, "did", None) or "")
        done = {"disabledid": "disabled", "enabledid": "enabled", "provdid": "added to the account",
                "deprovdid": "removed from the account"}
        result: Any
        skipped: tuple[MalformedLine, ...] = ()
        if name in done:
            getattr(client, name)(did)
            result, text = {"number": did, "done": True}, f"{format_number(did)} {done[name]}"
        elif name == "portable":
            ok = client.portable(did)
            result = {"number": did, "portable": ok}
            text = f"{format_number(did)} {'can' if ok else 'cannot'} be ported to FAXAGE"
        elif name == "getcdr":
            if args.nuidgt is None and (args.begin is None or args.end is None):
                print("faxd faxage getcdr: give --begin and --end, or --nuidgt", file=sys.stderr)
                return EXIT_USAGE
            cdrs = client.getcdr(begin=args.begin, end=args.end, nuidgt=args.nuidgt,
                                 nuidshow=True, didnumber=args.did)
            skipped = cdrs.malformed
            result = [dataclasses.asdict(r) for r in cdrs.items]
            text = tables.render_table(tables.CDR_COLUMNS, result, empty="no calls")
        elif name == "listnpanxx":
            localities = client.listnpanxx(args.ac)
            skipped = localities.malformed
            result = [dataclasses.asdict(r) for r in localities.items]
            text = tables.render_table(tables.NPANXX_COLUMNS, result, empty="none available")
        else:
            if name == "listlines":
                numbers = client.listlines()
            elif name == "listac":
                numbers = client.listac()
            else:
                numbers = client.listdids(args.ac, args.npanxx)
            skipped = numbers.malformed
            result = list(numbers.items)
            text = "\n".join(numbers.items) if numbers.items else "none"
    print_out(tables.render_json(result) if args.json else text)
    # On stderr, so the records (and --json) on stdout stay whole and parseable.
    for bad in skipped:
        print(f"skipped line {bad.lineno}: {bad.reason}: {bad.text}", file=sys.stderr)
    return EXIT_OK
