"""`faxd demo`: a newcomer sees faxes land in folders and outbound files reach sent/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from faxd.demo import DemoLayout, tree_lines
from faxd.store.db import Database
from faxd.store.models import InboundFax, OutboundJob

#: What each provider's demo says once a fax it received was delivered.
RELEASED = {
    "faxage": "(deleted on FAXAGE)",
    "voipms": "(deleted on VoIP.ms)",
    "ifax": "(kept on iFax, which has no delete; faxd remembers it took it)",
}


def _finished(
    root: Path, stdout: Path, receivers: tuple[str, ...] = ("faxage",)
) -> bool:
    """Whether the demo has done all its work: 13 faxes done per receiving provider
    (12 seeded, 1 added mid-run), 2 files in sent/, all narrated."""
    out = stdout.read_text(errors="replace") if stdout.exists() else ""
    sent = DemoLayout(root).sent
    return (
        all(out.count(RELEASED[name]) == 13 for name in receivers)
        and out.count("sent, file moved to sent/") == 2
        and sent.is_dir()
        and len(list(sent.iterdir())) == 2
    )


def _run_demo(
    tmp_path: Path, args: list[str], receivers: tuple[str, ...] = ("faxage",)
) -> tuple[Path, str, str]:
    """Run ``faxd demo --keep ARGS`` as a user would, Ctrl-C it once all is done.

    Returns the demo folder, its stdout and stderr; the demo exited 0.
    """
    root = tmp_path / "demo"
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        demo = subprocess.Popen(
            [sys.executable, "-m", "faxd", "demo", "--keep", "--dir", str(root), *args],
            stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 240  # under pytest-timeout's 300 s
        while not _finished(root, stdout, receivers) and demo.poll() is None:
            assert time.monotonic() < deadline, stdout.read_text() + stderr.read_text()
            time.sleep(0.2)
        demo.send_signal(signal.SIGINT)
        code = demo.wait(120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert code == 0, stdout.read_text() + stderr.read_text()
    return root, stdout.read_text(), stderr.read_text()


@pytest.mark.slow
def test_demo_delivers_faxes_and_sends_the_outbox(tmp_path: Path) -> None:
    """Run as a user would; 13 faxes reach two folders and the printer, 2 files reach sent/.

    Polls are a minute apart: the 13th fax (added mid-run) and the sent jobs'
    results arrive by push, as the simulator calls faxd's listener.

    The demo runs until Ctrl-C (``--keep``) and gets it once its narration says
    everything is done, however long a loaded machine takes to get there.
    """
    root, out_text, err_text = _run_demo(tmp_path, [])
    layout = DemoLayout(root)
    sales = sorted(p.name for p in (root / "faxes" / "sales").iterdir())
    support = sorted(p.name for p in (root / "faxes" / "support").rglob("*.pdf"))
    printed = sorted(p.name for p in layout.printed.iterdir())
    assert (len(sales), len(support), len(printed)) == (5, 4, 4)
    assert all(p.read_bytes().startswith(b"%PDF-") for p in layout.printed.iterdir())
    assert sorted(p.name for p in layout.sent.iterdir()) == [
        "3035551212 - Acme Corp.pdf", "price list.pdf"
    ]
    assert f"fax 104729 from (303) 555-0100 -> faxes/sales/{sales[0]}" in out_text
    assert (
        "outbound 3035551212 - Acme Corp.pdf -> (303) 555-1212: sent, file moved to sent/"
        in out_text
    )
    assert "arrives for sales; FAXAGE pushes it to faxd" in out_text
    assert f"Everything is still in {root}" in out_text
    assert "Traceback" not in err_text


def test_tree_lines_lists_folders_first(tmp_path: Path) -> None:
    """The closing tree shows folders before files, nested by indentation, skipping internals."""
    (tmp_path / "sent").mkdir()
    (tmp_path / "sent" / "a.pdf").write_bytes(b"x")
    (tmp_path / "state").mkdir()
    (tmp_path / "faxd.toml").write_text("")
    assert tree_lines(tmp_path, skip={"state"}) == ["sent/", "    a.pdf", "faxd.toml"]


def _db_counts(root: Path, model: Any) -> dict[tuple[str, str], int]:
    """(provider, state) -> rows of ``model`` in the demo's database."""
    db = Database(f"sqlite:///{root / 'state' / 'faxd.db'}")
    try:
        with db.session() as session:
            rows = session.execute(
                select(model.provider, model.state, func.count()).group_by(
                    model.provider, model.state
                )
            ).all()
    finally:
        db.dispose()
    return {(provider, state): n for provider, state, n in rows}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("provider", "receivers", "sender"),
    [
        ("voipms", ("voipms",), "voipms"),
        ("ifax", ("ifax",), "ifax"),
        ("faxnummer", (), "faxnummer"),
        ("all", ("faxage", "voipms"), "faxnummer"),
    ],
)
def test_demo_with_provider(
    tmp_path: Path, provider: str, receivers: tuple[str, ...], sender: str
) -> None:
    """``faxd demo --provider X``: each receiver's 13 faxes land under faxes/<provider>/
    and on the printer, the sender sends both outbox files, and the closing views
    show them with their provider."""
    root, out, err = _run_demo(tmp_path, ["--provider", provider], receivers)
    layout = DemoLayout(root)
    for name in receivers:
        folder = root / "faxes" / name
        sales = list((folder / "sales").iterdir())
        support = list((folder / "support").rglob("*.pdf"))
        assert (len(sales), len(support)) == (5, 4), name  # 4 + 1 added mid-run, 4
        assert all(p.read_bytes().startswith(b"%PDF-") for p in sales + support)
    printed = list(layout.printed.iterdir()) if layout.printed.exists() else []
    assert len(printed) == 4 * len(receivers)
    assert sorted(p.name for p in layout.sent.iterdir()) == [
        "3035551212 - Acme Corp.pdf", "price list.pdf"
    ]
    expected_faxes = {(name, "done"): 13 for name in receivers}
    assert _db_counts(root, InboundFax) == expected_faxes
    assert _db_counts(root, OutboundJob) == {(sender, "sent"): 2}
    if not receivers:
        assert "cannot receive faxes" in out and "shows it only sending" in out
        assert not (root / "faxes").exists()
    jobs_view = out.split(f"$ faxd jobs --config {layout.config}\n", 1)[1]
    rows = [line.split() for line in jobs_view.splitlines()[1:3]]
    assert all({"sent", sender} <= set(row) for row in rows), jobs_view
    inbox_view = out.split("$ faxd inbox", 1)[1].split("$ faxd jobs", 1)[0]
    for name in receivers:
        assert sum(line.startswith(name + " ") for line in inbox_view.splitlines()) == 13
    status_view = out.split("$ faxd status", 1)[1].split("$ faxd inbox", 1)[0]
    assert ["jobs", "2", "sent"] in [line.split() for line in status_view.splitlines()]
    assert "Traceback" not in err
