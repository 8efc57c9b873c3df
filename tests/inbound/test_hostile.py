"""Hostile data from the server: the good faxes go through, nothing escapes the folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inbound_helpers import events, make_config, sim_settings

from faxd.config import FolderSpec, RouteSpec
from faxd.faxage.client import FaxageClient
from faxd.inbound.pipeline import InboundPipeline
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
    outcome = InboundPipeline(client, db, config).poll()

    assert outcome.done == 3 and outcome.errors == 1
    assert normal.deleted and traversal.deleted and long_cid.deleted
    assert not broken.deleted  # cannot be read, so it is left on FAXAGE
    skipped = events(logs, "inbound.listfax_line_skipped")
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
        row = session.query(InboundFax).filter_by(recvid=traversal.recvid).one()
        assert row.server_filename is not None and "/" not in row.server_filename
        assert ".." not in row.server_filename
        long_row = session.query(InboundFax).filter_by(recvid=long_cid.recvid).one()
        assert len(long_row.cid) <= 32
