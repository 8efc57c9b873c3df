"""``[inbound] max_fax_mb``: a fax too large to take fails at once, stays on FAXAGE, and shows.

Against the real simulator over HTTP: the pipeline with a 1 MB cap and a
2 MiB fax, then the command line (``faxd run --once``, ``faxd inbox --failed``,
``faxd inbox --problems``) on a real config file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    SALES,
    ActionBook,
    FixedRandom,
    ManualClock,
    config_file,
    faxage_inbound,
    make_config,
    recorder_route,
    sim_settings,
)

from faxd.app import make_client
from faxd.cli import main
from faxd.config import load_config
from faxd.errors import ConfigError
from faxd.inbound.pipeline import InboundPipeline
from faxd.store.states import FaxState

MiB = 1024 * 1024
BIG = b"%PDF-1.4\n" + b"\0" * (2 * MiB)


def test_a_fax_over_the_cap_fails_once_and_stays_on_faxage(
    sim: Any, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """Cut off at the cap, no spool file, failed with the key to raise, never deleted or retried."""
    fax = sim.add_fax(SALES, data=BIG)
    small = sim.add_fax(SALES)
    config = make_config(
        tmp_path, (recorder_route("sales", "sales-a"),), faxage=sim_settings(sim), max_fax_mb=1
    )
    client = make_client(config.faxage)
    pipe = InboundPipeline(
        faxage_inbound(client, config), db, config, actions_for=book, clock=clock, rng=FixedRandom()
    )
    try:
        pipe.poll()
        row = pipe.ledger.get(fax.remote_id)
        assert row is not None and row.state is FaxState.FAILED
        assert row.last_error is not None
        assert "larger than [inbound] max_fax_mb = 1 MB" in row.last_error
        assert f"faxd retry --provider faxage {fax.recvid}" in row.last_error
        assert list((tmp_path / "spool").iterdir()) == []
        assert not fax.deleted and fax.getfax_count == 1
        assert small.deleted  # the others are not held up
        for _ in range(3):  # a permanent failure: no backoff and retry
            clock.advance(7 * 24 * 3600)
            pipe.poll()
        assert fax.getfax_count == 1 and not fax.deleted
        # Raised, and retried by hand, it goes through.
        bigger = replace(config, inbound=replace(config.inbound, max_fax_mb=2.5))
        pipe = InboundPipeline(
            faxage_inbound(client, bigger), db, bigger, actions_for=book, clock=clock
        )
        pipe.retry(fax.remote_id)
        pipe.poll()
        assert fax.deleted and book["sales-a"].delivered[-1][0] == fax.remote_id
    finally:
        client.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_inbox_failed_shows_the_fax_too_large(
    sim: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`faxd run --once` with max_fax_mb = 1, then `faxd inbox --failed` names the limit."""
    fax = sim.add_fax(SALES, data=BIG)
    config = config_file(tmp_path, sim, "max_fax_mb = 1")
    assert run(capsys, "run", "--once", "--config", str(config))[0] == 0
    code, out = run(capsys, "inbox", "--failed", "--config", str(config))
    assert code == 0 and str(fax.recvid) in out and "failed" in out
    assert "max_fax_mb = 1 MB" in " ".join(out.split())
    code, out = run(capsys, "inbox", "--failed", "--json", "--config", str(config))
    (row,) = json.loads(out)
    assert row["remote_id"] == fax.remote_id and row["provider"] == "faxage"
    assert "faxd retry" in row["last_error"]
    assert not fax.deleted


def test_inbox_problems_shows_lines_faxage_sent_that_do_not_parse(
    sim: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fax whose file name breaks its line: the stray line is listed with count and dates."""
    good = sim.add_fax(SALES)
    sim.add_fax(SALES, filename="fax.pdf\nthis is no fax line")  # listed after the cursor
    config = config_file(tmp_path, sim, "")
    for _ in range(2):
        run(capsys, "run", "--once", "--config", str(config))  # exit 1: lines in error
    assert good.deleted
    code, out = run(capsys, "inbox", "--problems", "--config", str(config))
    assert code == 0
    assert "line:       this is no fax line | 1\n" in out  # its tab shown as " | "
    assert "seen:       2 times, first " in out and "reason:" in out
    code, out = run(capsys, "inbox", "--problems", "--json", "--config", str(config))
    rows = json.loads(out)
    stray = next(r for r in rows if r["line"] == "this is no fax line | 1")
    assert stray["count"] == 2 and stray["first_seen"] <= stray["last_seen"] and stray["reason"]


@pytest.mark.parametrize(
    ("value", "expected"), [("", 200.0), ("max_fax_mb = 0.5", 0.5), ("max_fax_mb = 300", 300.0)]
)
def test_max_fax_mb_is_read(sim: Any, tmp_path: Path, value: str, expected: float) -> None:
    assert load_config(config_file(tmp_path, sim, value)).inbound.max_fax_mb == expected


@pytest.mark.parametrize("value", ["0", "-1", '"big"', "true"])
def test_max_fax_mb_must_be_a_size(sim: Any, tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(tmp_path, sim, f"max_fax_mb = {value}"))
    (problem,) = caught.value.problems
    assert "max_fax_mb" in problem and "must be a number of MB" in problem
