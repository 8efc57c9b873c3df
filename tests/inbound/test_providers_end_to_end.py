"""End to end, once per provider that receives: the pipeline against its simulator.

The same office for FAXAGE, VoIP.ms and iFax (three lines, a folder each,
configured through the simulator kit's section): every fax lands in its folder
with its bytes, is released only after (or, on iFax, kept and never taken
again), and the database and spool end clean.  Then the feature each provider
has alone: VoIP.ms moving delivered faxes to an archive folder, iFax keeping
faxes on the server across a restart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from inbound_helpers import (
    DOWNLOAD_OPERATION,
    RELEASE_OPERATION,
    Receiver,
    operations,
    provider_config_file,
    provider_path,
    provider_require_delivered,
    sim_faxes,
)

from faxd.config import Config, load_config
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.registry import make_inbound
from faxd.store.db import Database
from faxd.store.models import Delivery, InboundFax


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def pipeline(config: Config, name: str, db: Database) -> InboundPipeline:
    return InboundPipeline(make_inbound(config, name), db, config)


def test_thirty_faxes_over_three_numbers_each_provider(
    receiver: Receiver, tmp_path: Path, db: Database
) -> None:
    """30 faxes on three lines: right folder, right bytes, released only after, nothing twice."""
    name, sim = receiver.name, receiver.sim
    config = load_config(provider_config_file(tmp_path, name, receiver.kit.section(sim)))
    root = tmp_path / "fax"
    faxes = receiver.seed(30)
    sim.delete_check = provider_require_delivered(root)
    pipe = pipeline(config, name, db)

    outcome = pipe.poll()

    assert (outcome.new, outcome.done, outcome.failed, outcome.errors) == (30, 30, 0, 0)
    assert sim.violations == []
    for fax in faxes:
        assert provider_path(root, fax).read_bytes() == fax.data
    assert all_files(root) == {provider_path(root, f) for f in faxes}  # nothing else written
    assert {len(list((root / d).glob("*.pdf"))) for d in ("sales", "support", "inbox")} == {10}
    assert [p for p in config.inbound.spool_dir.rglob("*") if p.is_file()] == []
    released = RELEASE_OPERATION[name]
    ops = operations(sim)
    if released is None:  # kept on the server: never released, downloaded once
        assert not any(f.downloads != 1 for f in faxes)
    else:
        assert all(f.released for f in faxes)
        assert ops.count(released) == 30
    assert ops.count(DOWNLOAD_OPERATION[name]) == 30

    with db.session() as session:
        rows = session.query(InboundFax).all()
        assert len(rows) == 30 and {r.state for r in rows} == {"done"}
        assert {r.provider for r in rows} == {name}
        assert all(r.delivered_at is not None for r in rows)
        assert all((r.deleted_at is None) == (released is None) for r in rows)
        assert session.query(Delivery).filter(Delivery.state != "done").count() == 0

    # Later polls (and a sweep) take nothing again, on every provider.
    for _ in range(2):
        again = pipe.poll()
        assert (again.new, again.done, again.failed, again.errors) == (0, 0, 0, 0)
    assert pipe.sweep().new == 0
    assert operations(sim).count(DOWNLOAD_OPERATION[name]) == 30
    if released is not None:
        assert operations(sim).count(released) == 30
    assert all_files(root) == {provider_path(root, f) for f in faxes}
    with db.session() as session:
        assert session.query(InboundFax).count() == 30
    assert sim.violations == []


def test_voipms_moves_delivered_faxes_to_the_archive_folder(tmp_path: Path, db: Database) -> None:
    """after_delivery = "move": each fax ends in ARCHIVE (created), not deleted, delivered once."""
    from faxd.sim.kits import KITS

    kit = KITS["voipms"]
    sim = kit.start()
    try:
        del sim.folders[3]  # no ARCHIVE yet: faxd creates it
        moving = 'after_delivery = "move"\narchive_folder = "ARCHIVE"\n'
        path = provider_config_file(tmp_path, "voipms", kit.section(sim), extra=moving)
        config = load_config(path)
        root = tmp_path / "fax"
        faxes = sim.seed_inbound(9, dnis=("3035550101", "3035550102", "3035550103"))
        sim.delete_check = provider_require_delivered(root)
        pipe = pipeline(config, "voipms", db)

        outcome = pipe.poll()

        assert (outcome.new, outcome.done, outcome.failed) == (9, 9, 0)
        archive = sim.folder_id("ARCHIVE")
        assert archive is not None
        assert all(f.moved_to == archive and not f.deleted for f in faxes)
        assert sim.violations == []
        assert "deleteFaxMessage" not in operations(sim)
        assert operations(sim).count("setFaxFolder") == 1
        assert all_files(root) == {provider_path(root, f) for f in faxes}
        for fax in faxes:
            assert provider_path(root, fax).read_bytes() == fax.data
        # INBOX no longer lists them: polls and the sweep find nothing.
        assert pipe.poll().new == 0 and pipe.sweep().new == 0
        assert operations(sim).count("getFaxMessagePDF") == 9
        assert operations(sim).count("moveFaxMessage") == 9
        with db.session() as session:
            assert {r.state for r in session.query(InboundFax)} == {"done"}
    finally:
        sim.stop()


def run_once(config: Path, log: Path) -> None:
    """``faxd run --config CONFIG --once`` as a real child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAXD_")}
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "faxd", "run", "--config", str(config), "--once"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, log.read_text()[-3000:]


def test_ifax_keeps_faxes_on_the_server_across_a_restart(tmp_path: Path) -> None:
    """A new daemon (and a new pipeline) on the same database takes no kept fax again."""
    from faxd.sim.kits import KITS

    kit = KITS["ifax"]
    sim = kit.start()
    try:
        path = provider_config_file(tmp_path, "ifax", kit.section(sim))
        config = load_config(path)
        root = tmp_path / "fax"
        log = tmp_path / "daemon.log"
        first = sim.seed_inbound(6, dnis=("+13035550101", "+13035550103"))
        run_once(path, log)
        assert all(f.downloads == 1 for f in first)
        assert all_files(root) == {provider_path(root, f) for f in first}

        run_once(path, log)  # restarted: lists the same faxes, takes none
        later = sim.seed_inbound(2, dnis=("+13035550102",))
        db = Database(config.database.url)
        try:
            outcome = pipeline(config, "ifax", db).poll()  # and a fresh pipeline in-process
            assert (outcome.new, outcome.done) == (2, 2)
            assert pipeline(config, "ifax", db).sweep().new == 0
            with db.session() as session:
                rows = session.query(InboundFax).all()
                assert len(rows) == 8 and {r.state for r in rows} == {"done"}
                assert all(r.deleted_at is None for r in rows)
        finally:
            db.dispose()
        assert [f.downloads for f in sim_faxes(sim)] == [1] * 8
        assert all_files(root) == {provider_path(root, f) for f in first + later}
        assert operations(sim).count("fax-list-all") >= 3
        assert sim.violations == []
    finally:
        sim.stop()
