"""`faxd demo`: a newcomer sees faxes land in folders and outbound files reach sent/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from faxd.demo import DemoLayout, tree_lines


@pytest.mark.slow
def test_demo_delivers_faxes_and_sends_the_outbox(tmp_path: Path) -> None:
    """Run as a user would; 12 faxes reach two folders and the printer, 2 files reach sent/."""
    root = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "faxd", "demo", "--seconds", "15", "--dir", str(root)],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert done.returncode == 0, done.stderr
    layout = DemoLayout(root)
    sales = sorted(p.name for p in (root / "faxes" / "sales").iterdir())
    support = sorted(p.name for p in (root / "faxes" / "support").rglob("*.pdf"))
    printed = sorted(p.name for p in layout.printed.iterdir())
    assert (len(sales), len(support), len(printed)) == (4, 4, 4)
    assert all(p.read_bytes().startswith(b"%PDF-") for p in layout.printed.iterdir())
    assert sorted(p.name for p in layout.sent.iterdir()) == [
        "3035551212 - Acme Corp.pdf", "price list.pdf"
    ]
    out = done.stdout
    assert f"fax 104729 from (303) 555-0100 -> faxes/sales/{sales[0]}" in out
    assert "outbound 3035551212 - Acme Corp.pdf -> (303) 555-1212: sent, file moved to sent/" in out
    assert f"Everything is still in {root}" in out
    assert "Traceback" not in done.stderr


def test_tree_lines_lists_folders_first(tmp_path: Path) -> None:
    """The closing tree shows folders before files, nested by indentation, skipping internals."""
    (tmp_path / "sent").mkdir()
    (tmp_path / "sent" / "a.pdf").write_bytes(b"x")
    (tmp_path / "state").mkdir()
    (tmp_path / "faxd.toml").write_text("")
    assert tree_lines(tmp_path, skip={"state"}) == ["sent/", "    a.pdf", "faxd.toml"]
