"""`faxd demo`: a newcomer sees faxes land in folders and outbound files reach sent/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faxd.demo import DemoLayout, tree_lines


def _finished(root: Path, stdout: Path) -> bool:
    """Whether the demo has done all its work: 13 faxes done, 2 files in sent/ and narrated."""
    out = stdout.read_text(errors="replace") if stdout.exists() else ""
    sent = DemoLayout(root).sent
    return (
        out.count("(deleted on FAXAGE)") == 13  # 12 seeded, 1 pushed
        and out.count("sent, file moved to sent/") == 2
        and sent.is_dir()
        and len(list(sent.iterdir())) == 2
    )


@pytest.mark.slow
def test_demo_delivers_faxes_and_sends_the_outbox(tmp_path: Path) -> None:
    """Run as a user would; 13 faxes reach two folders and the printer, 2 files reach sent/.

    Polls are a minute apart: the 13th fax (added mid-run) and the sent jobs'
    results arrive by push, as the simulator calls faxd's listener.

    The demo runs until Ctrl-C (``--keep``) and gets it once its narration says
    everything is done, however long a loaded machine takes to get there.
    """
    root = tmp_path / "demo"
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        demo = subprocess.Popen(
            [sys.executable, "-m", "faxd", "demo", "--keep", "--dir", str(root)],
            stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 240  # under pytest-timeout's 300 s
        while not _finished(root, stdout) and demo.poll() is None:
            assert time.monotonic() < deadline, stdout.read_text() + stderr.read_text()
            time.sleep(0.2)
        demo.send_signal(signal.SIGINT)
        code = demo.wait(120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert code == 0, stderr.read_text()
    layout = DemoLayout(root)
    sales = sorted(p.name for p in (root / "faxes" / "sales").iterdir())
    support = sorted(p.name for p in (root / "faxes" / "support").rglob("*.pdf"))
    printed = sorted(p.name for p in layout.printed.iterdir())
    assert (len(sales), len(support), len(printed)) == (5, 4, 4)
    assert all(p.read_bytes().startswith(b"%PDF-") for p in layout.printed.iterdir())
    assert sorted(p.name for p in layout.sent.iterdir()) == [
        "3035551212 - Acme Corp.pdf", "price list.pdf"
    ]
    out_text = stdout.read_text()
    assert f"fax 104729 from (303) 555-0100 -> faxes/sales/{sales[0]}" in out_text
    assert (
        "outbound 3035551212 - Acme Corp.pdf -> (303) 555-1212: sent, file moved to sent/"
        in out_text
    )
    assert "arrives for sales; FAXAGE pushes it to faxd" in out_text
    assert f"Everything is still in {root}" in out_text
    assert "Traceback" not in stderr.read_text()


def test_tree_lines_lists_folders_first(tmp_path: Path) -> None:
    """The closing tree shows folders before files, nested by indentation, skipping internals."""
    (tmp_path / "sent").mkdir()
    (tmp_path / "sent" / "a.pdf").write_bytes(b"x")
    (tmp_path / "state").mkdir()
    (tmp_path / "faxd.toml").write_text("")
    assert tree_lines(tmp_path, skip={"state"}) == ["sent/", "    a.pdf", "faxd.toml"]
