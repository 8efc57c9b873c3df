"""Hostile data from the server: the good faxes go through, nothing escapes the folders."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from inbound_helpers import events, faxage_inbound, make_config, sim_settings

from faxd.config import EmailSpec, FolderSpec, RouteSpec, SmtpSettings
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.client import FaxageClient
from faxd.store.models import InboundFax


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_hostile_names_long_caller_ids_and_broken_lines_are_contained(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, logs: list[Any]
) -> None:
    """A ../../etc/passwd file name, a 300-character CID and a malformed line among good ones."""
    root = tmp_path / "srv" / "fax"
    route = RouteSpec("all", actions=(FolderSpec(f"{root}/{{cid}}/{{recvid}}-{{cid}}.{{ext}}"),))
    config = make_config(
        tmp_path, (route,), faxage=sim_settings(sim), spool_dir=tmp_path / "var" / "spool"
    )
    before = files_under(tmp_path)
    normal = sim.add_fax("3035550101", "(303)555-0100")
    traversal = sim.add_fax("3035550101", "(303)555-0100", filename="../../etc/passwd")
    broken = sim.add_fax("3035550102", "Evil\tCaller")  # a tab inside a field breaks the line
    long_cid = sim.add_fax("3035550103", "1234567890" * 30)
    outcome = InboundPipeline(faxage_inbound(client, config), db, config).poll()

    assert outcome.done == 3 and outcome.errors == 1
    assert normal.deleted and traversal.deleted and long_cid.deleted
    assert not broken.deleted  # cannot be read, so it is left on FAXAGE
    skipped = events(logs, "inbound.listing_line_skipped")
    assert [entry["lineno"] for entry in skipped] == [3]

    written = files_under(tmp_path) - before
    outside = {
        p
        for p in written
        if root not in p.parents
        and p.parent != config.inbound.spool_dir
        and p.suffix != ".db"
        and not p.name.startswith("faxd.db")
    }
    assert outside == set()
    assert not any(p.name == "passwd" for p in files_under(tmp_path))
    assert (root / "3035550100" / f"{traversal.recvid}-3035550100.pdf").read_bytes() == (
        traversal.data
    )
    long_files = [p for p in written if p.name.startswith(f"{long_cid.recvid}-")]
    assert len(long_files) == 1 and long_files[0].read_bytes() == long_cid.data
    assert len(long_files[0].name) < 100  # the caller id was cut, not used whole

    with db.session() as session:
        row = session.query(InboundFax).filter_by(remote_id=traversal.remote_id).one()
        assert row.server_filename is not None and "/" not in row.server_filename
        assert ".." not in row.server_filename
        long_row = session.query(InboundFax).filter_by(remote_id=long_cid.remote_id).one()
        assert len(long_row.cid) <= 32


# ------------------------------------------------------------- every field, hostile

#: A route name as hostile as a config could carry: it reaches {route} in a path and
#: a subject (a config check may refuse it one day; the renderer must not rely on that).
HOSTILE_ROUTE = "../../etc\r\nBcc: route@evil.example\x1b[2J\x07"
RCPT = "ops@example.com"
#: Caller ids FAXAGE passes through from the telephone network, whatever they hold.
HOSTILE_CIDS = (
    "../../../etc/passwd",
    "Bcc: cid@evil.example",
    "x\rBcc: cid@evil.example",  # a lone CR stays inside the listfax line
    "$(reboot);`id`|rm -rf /",
    "\x1b[2J\x07\x00",
    "\u202egnp.exe",
    "%2e%2e%2f%2e%2e%2fetc",
    "1234567890" * 30,
)
#: Called numbers as a broken or hostile server might list them.
HOSTILE_DNIS = ("../../etc", "3035550101/../../x", "\uff13\uff10\uff13", "\u202e1010555303")
#: File names in the listfax column and in Content-Disposition.
HOSTILE_FILENAMES = (
    "../../etc/passwd",
    "..\\..\\windows\\system32\\evil.pdf",
    "\"; filename*=UTF-8''..%2F..%2Fetc%2Fcron.d%2Fevil",
    "/etc/shadow",
    ".bashrc",
    "\u202efdp.exe",
)
#: The header names an email action writes; anything else was injected.
MAIL_HEADERS = {
    "from", "to", "subject", "date", "message-id", "x-faxd-recvid",
    "mime-version", "content-type", "content-transfer-encoding",
}


class Spelled(int):
    """A recvid the simulator lists in another spelling (``str``) but answers as a number."""

    spelling: str

    def __new__(cls, value: int, spelling: str) -> Spelled:
        made = super().__new__(cls, value)
        made.spelling = spelling
        return made

    def __str__(self) -> str:  # what the listfax line shows
        return self.spelling

    def __format__(self, spec: str) -> str:  # what every other answer shows
        return format(int(self), spec)


def fullwidth(number: int) -> str:
    return "".join(chr(0xFF10 + int(d)) for d in str(number))


def reason_for(fax: Any, logs: list[Any], db: Any) -> str | None:
    """Why a fax that was not delivered was held: a logged warning naming it, or its row."""
    names = {str(int(fax.recvid)), str(fax.recvid)}
    for entry in logs:
        if entry.get("log_level") in ("warning", "error") and any(
            n in str(v) for n in names for v in entry.values()
        ):
            return str(entry)
    with db.session() as session:
        row = session.query(InboundFax).filter_by(remote_id=fax.remote_id).one_or_none()
        if row is not None and row.last_error:
            return str(row.last_error)
    return None


def test_hostile_values_in_every_field_stay_in_their_folder_and_headers(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, logs: list[Any], smtp_server: Any
) -> None:
    """Hostile caller ids, called numbers, recvid spellings, server file names and a hostile
    route name, through the simulator into a folder and an email action: every file lands
    under the delivery root with tame names, every email has only its own headers and
    recipient, and each fax is delivered or held with a reason."""
    root = tmp_path / "srv" / "fax"
    template = f"{root}/{{route}}/{{dnis}}/{{cid}}/{{recvid}}-{{cid}}-{{route}}-{{pages}}.{{ext}}"
    route = RouteSpec(HOSTILE_ROUTE, actions=(
        FolderSpec(template),
        EmailSpec(to=(RCPT,), subject="Fax {recvid} from {cid} to {dnis} via {route}",
                  body="route {route}\ncid {cid}\ndnis {dnis}\n"),
    ))
    smtp = SmtpSettings(host=smtp_server.host, port=smtp_server.port, security="none",
                        from_addr="faxd@example.com", timeout=10.0)
    config = make_config(
        tmp_path, (route,), faxage=sim_settings(sim), smtp=smtp,
        spool_dir=tmp_path / "var" / "spool",
    )
    before = files_under(tmp_path)
    must_deliver = [sim.add_fax("3035550101", cid) for cid in HOSTILE_CIDS]
    for dnis in HOSTILE_DNIS:
        fax = sim.add_fax("3035550101")
        fax.dnis = dnis  # served as is: the simulator lists whatever its state holds
        must_deliver.append(fax)
    must_deliver += [sim.add_fax("3035550101", filename=name) for name in HOSTILE_FILENAMES]
    respelled = []
    for spell in (fullwidth, lambda n: f"000{n}"):
        fax = sim.add_fax("3035550101")
        fax.recvid = Spelled(fax.recvid, spell(fax.recvid))
        respelled.append(fax)
    line_breaker = sim.add_fax("3035550101", "x\nBcc: cid@evil.example")

    InboundPipeline(faxage_inbound(client, config), db, config).poll()

    # Nothing outside the delivery root (the spool and the database aside).
    written = files_under(tmp_path) - before
    outside = {
        p for p in written
        if root not in p.parents and p.parent != config.inbound.spool_dir
        and not p.name.startswith("faxd.db")
    }
    assert outside == set()
    for path in written - {p for p in written if root not in p.parents}:
        for part in path.relative_to(root).parts:
            assert part not in ("", ".", "..") and not part.startswith("."), path
            assert all(ch.isprintable() for ch in part), path

    # Every email: the one recipient, only faxd's own headers, a one-line subject.
    parsed = [message_from_bytes(raw, policy=policy.default) for *_, raw in smtp_server.messages]
    assert all(rcpt == [RCPT] for _from, rcpt, _raw in smtp_server.messages)
    for message in parsed:
        assert {k.lower() for k in message} <= MAIL_HEADERS, message.keys()
        subject = str(message["Subject"])
        assert "\r" not in subject and "\n" not in subject, subject
        assert subject.isprintable() and "route@evil.example" in subject, subject
    for _from, _rcpt, raw in smtp_server.messages:
        head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        assert b"\nBcc:" not in head and b"\r" not in head, head

    # Each fax is delivered, file and email, or (only where its line cannot be read)
    # held on FAXAGE with a reason.
    mailed = {str(m["X-Faxd-Recvid"]) for m in parsed}
    by_bytes = {p.read_bytes(): p for p in written if root in p.parents}
    not_delivered = []
    for fax in [*must_deliver, *respelled]:
        recvid = int(fax.recvid)
        if fax.deleted and fax.data in by_bytes and str(recvid) in mailed:
            assert by_bytes[fax.data].name.startswith(f"{recvid}-")
            continue
        not_delivered.append(fax)
    assert [f for f in not_delivered if f in must_deliver] == []
    for fax in [*not_delivered, line_breaker]:
        assert not sim.faxes[int(fax.recvid)].deleted
        assert reason_for(fax, logs, db), f"fax {int(fax.recvid)} held without a reason"

    # The server's file names are kept only as bare, tame names; caller ids and called
    # numbers only as the numbers they could be (a template is not their only guard).
    with db.session() as session:
        for row in session.query(InboundFax).all():
            name = row.server_filename
            assert name is None or (
                "/" not in name and "\\" not in name and name not in (".", "..")
                and name.isprintable()
            ), name
            for number in (row.cid, row.dnis):
                assert len(number) <= 32 and re.fullmatch(r"\+?\d*", number), number
