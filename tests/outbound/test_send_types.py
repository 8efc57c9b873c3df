"""FAXAGE's newer send types (png, ppt, pptx, wps, wpd) reach it as they are.

The 2014-era documents add these five to the types FAXAGE converts itself.
faxd could also turn a png (or, with LibreOffice, a ppt or pptx) into a PDF,
which would hide a FAXAGE type list that lost them, and wps and wpd it cannot
convert at all.  So LibreOffice is kept off ``PATH`` and each file, dropped in
the hot folder or queued by ``faxd send``, must be posted to FAXAGE under its
own name with its bytes unchanged; and the README must name every type.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_outbound_crash import faxd_jobs_json, write_config
from test_status_columns import run_until_finished

from faxd.providers.faxage.files import SEND_EXTENSIONS

README = Path(__file__).resolve().parents[2] / "README.md"
FAXNO = "3035551212"
#: One file of each newer type, its bytes starting as such a file does.
NEWER = {
    "chart.png": b"\x89PNG\r\n\x1a\n a chart",
    "deck.ppt": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 a deck",
    "deck.pptx": b"PK\x03\x04 a deck",
    "memo.wps": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 a memo",
    "memo.wpd": b"\xffWPC a memo",
}


@pytest.fixture
def no_libreoffice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The faxd processes the test starts find no ``soffice``: nothing can be converted."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))


@pytest.mark.parametrize("way", ["hot folder", "faxd send"])
@pytest.mark.usefixtures("no_libreoffice")
def test_newer_types_are_sent_as_they_are(tmp_path: Path, folders: Any, sim: Any, way: str) -> None:
    """Each of png, ppt, pptx, wps and wpd is posted once, unconverted, and its job sent."""
    config = write_config(tmp_path, folders, sim)
    sim.job_seconds = 0.0
    if way == "hot folder":
        dropped = {f"{FAXNO} - {name}": data for name, data in NEWER.items()}
        for name, data in dropped.items():
            (folders.hot / name).write_bytes(data)
    else:
        dropped = dict(NEWER)
        documents = tmp_path / "documents"
        documents.mkdir()
        for name, data in dropped.items():
            (documents / name).write_bytes(data)
        for command in (
            ["db", "upgrade", "--config", str(config)],
            ["send", "--config", str(config), "--to", FAXNO, *(str(documents / n) for n in NEWER)],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "faxd", *command],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
    run_until_finished(config, tmp_path / "faxd.db", len(NEWER))
    posted = sorted(file for job in sim.jobs.values() for file in job.files)
    assert posted == sorted(dropped.items())
    assert [row["state"] for row in faxd_jobs_json(config)] == ["sent"] * len(NEWER)


def test_readme_names_every_faxage_send_type() -> None:
    """The README's list of what FAXAGE takes is the list faxd sends to it as it is."""
    text = " ".join(README.read_text().split())
    (listed,) = re.findall(r"FAXAGE takes ([a-z/, ]+);", text)
    named = {kind for item in listed.split(", ") for kind in item.split("/")}
    assert named == SEND_EXTENSIONS
