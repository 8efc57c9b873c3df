"""Tests for ``faxd check-config --online`` and the FAXAGE login check, against the simulator.

The FAXAGE check logs in to the real simulator over HTTP: a good password is OK
with what it read, a wrong one FAILED with what to fix; the read changes
nothing on the account.  The runner reports every configured provider, one
line each, whatever a provider's checker raises, and never prints a secret.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from faxd.check_config import check_online
from faxd.config import Config, load_config
from faxd.providers.base import OnlineCheck
from faxd.providers.faxage.check import make_checker as faxage_checker
from faxd.sim import FaxageSimulator

PASSWORD = "Online-check-PW-81x"
WRONG = "Wrong-online-PW-27q"
IFAX_TOKEN = "ifax-online-TOKEN-3b9d"


@pytest.fixture
def sim() -> Iterator[FaxageSimulator]:
    with FaxageSimulator("acme", "12345", PASSWORD) as server:
        server.seed_inbound(2)
        yield server


def write_config(tmp_path: Path, sim: FaxageSimulator, *, extra: str = "") -> Path:
    path = tmp_path / "faxd.toml"
    path.write_text(
        f'[faxage]\nusername = "acme"\ncompany = "12345"\nbase_url = "{sim.base_url}"\n'
        "timeout = 10\n" + extra + "\n[inbound]\nenabled = false\n"
        f'[database]\nurl = "sqlite:///{tmp_path / "faxd.db"}"\n'
    )
    path.chmod(0o600)
    return path


def load(tmp_path: Path, sim: FaxageSimulator, password: str, extra: str = "") -> Config:
    env = {"FAXD_FAXAGE_PASSWORD": password, "FAXD_IFAX_TOKEN": IFAX_TOKEN}
    return load_config(write_config(tmp_path, sim, extra=extra), env=env)


def faxage_only(config: Config, name: str) -> OnlineCheck:
    """The registry's lookup for this branch's one checker."""
    assert name == "faxage"
    return faxage_checker(config)


def test_faxage_login_ok_reads_and_changes_nothing(tmp_path: Path, sim: FaxageSimulator) -> None:
    lines, ok = check_online(load(tmp_path, sim, PASSWORD), make_checker=faxage_only)

    assert ok
    assert lines == ["faxage: OK — login accepted for acme@12345; 2 received faxes waiting on "
                     "FAXAGE"]  # fmt: skip
    assert [r.operation for r in sim.requests] == ["listfax"]
    assert len(sim.faxes) == 2 and not any(f.deleted for f in sim.faxes.values())


def test_faxage_login_refused_says_what_to_fix(tmp_path: Path, sim: FaxageSimulator) -> None:
    lines, ok = check_online(load(tmp_path, sim, WRONG), make_checker=faxage_only)

    assert not ok
    [line] = lines
    assert line.startswith("faxage: FAILED — FAXAGE refused the login for user 'acme' company "
                           "'12345': check username and company in [faxage] and the password "
                           "(from environment variable FAXD_FAXAGE_PASSWORD)")  # fmt: skip
    assert WRONG not in line and PASSWORD not in line
    assert len(sim.requests) == 1  # one try: a refused login is not retried


class Raising:
    """A checker that fails the way a broken client might: not with a faxd error."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def check_login(self) -> str:
        raise self.exc


def test_every_provider_reported_whatever_its_checker_raises(
    tmp_path: Path, sim: FaxageSimulator
) -> None:
    """A provider whose checker cannot be built or raises anything is FAILED on one line,
    redacted, and the others are still checked."""
    config = load(tmp_path, sim, PASSWORD, extra=f'[ifax]\nbase_url = "{sim.base_url}"\n')
    leaked_url = f"{sim.base_url}/rest.php?api_password={IFAX_TOKEN}&method=getFaxMessages"

    def checkers(config: Config, name: str) -> OnlineCheck:
        if name == "ifax":
            failure = requests.ConnectionError(f"Max retries exceeded\nwith url: {leaked_url}")
            return Raising(failure)
        return faxage_only(config, name)

    lines, ok = check_online(config, make_checker=checkers)
    assert not ok
    assert lines[0].startswith("faxage: OK — login accepted")
    assert lines[1].startswith("ifax: FAILED — ConnectionError: Max retries exceeded with url:")
    assert IFAX_TOKEN not in lines[1] and "\n" not in lines[1]

    def unbuildable(config: Config, name: str) -> OnlineCheck:
        raise ModuleNotFoundError(f"No module named 'faxd.providers.{name}.provider'")

    lines, ok = check_online(config, make_checker=unbuildable)
    assert not ok and [line.split(" — ")[0] for line in lines] == [
        "faxage: FAILED", "ifax: FAILED"
    ]  # fmt: skip


def test_cli_online_failure_exits_non_zero(tmp_path: Path, sim: FaxageSimulator) -> None:
    """`faxd check-config --online` prints the config, then a FAILED line, and exits 1."""
    path = write_config(tmp_path, sim)
    env = {"PATH": "/usr/bin:/bin", "FAXD_FAXAGE_PASSWORD": WRONG}
    done = subprocess.run(
        [sys.executable, "-m", "faxd", "check-config", "--online", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "FAXAGE [faxage]" in done.stdout
    assert "Online check\n  faxage: FAILED — " in done.stdout
    assert WRONG not in done.stdout + done.stderr

    offline = subprocess.run(
        [sys.executable, "-m", "faxd", "check-config", "--config", str(path)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert offline.returncode == 0 and "Online check" not in offline.stdout


def test_faxage_check_retries_one_server_error_then_reports_the_next(
    tmp_path: Path, sim: FaxageSimulator
) -> None:
    """One 500 is retried (a blip is not a failed login); a second is FAILED with its reason."""
    config = load(tmp_path, sim, PASSWORD)
    blip = sim.inject("http500", operation="listfax", times=1)
    lines, ok = check_online(config, make_checker=faxage_only)
    assert ok and blip.fired == 1, lines

    sim.inject("http500", operation="listfax", times=2)
    lines, ok = check_online(config, make_checker=faxage_only)
    assert not ok
    assert lines[0].startswith("faxage: FAILED — ") and "500" in lines[0], lines


def _all_four(tmp_path: Path, sims: dict[str, object]) -> Path:
    from faxd.sim.kits import KITS

    path = tmp_path / "all.toml"
    sections = "\n".join(KITS[name].section(sim) for name, sim in sims.items())
    path.write_text(
        sections + '\n[inbound]\nproviders = ["faxage", "voipms", "ifax"]\n'
        f'spool_dir = "{tmp_path / "spool"}"\n'
        f'[outbound]\nprovider = "faxnummer"\nhot_folder = "{tmp_path / "out"}"\n'
        f'sent_folder = "{tmp_path / "sent"}"\nfailed_folder = "{tmp_path / "failed"}"\n'
        f'spool_dir = "{tmp_path / "ospool"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "faxd.db"}"\n'
        f'[[routes]]\nname = "default"\n[[routes.actions]]\ntype = "folder"\n'
        f'path = "{tmp_path / "in"}/{{provider}}/{{recvid}}.{{ext}}"\n'
    )
    path.chmod(0o600)
    return path


def test_cli_online_checks_all_four_providers_through_their_simulators(tmp_path: Path) -> None:
    """Every configured provider logs in over HTTP: OK each; one wrong password fails only it."""
    from faxd.sim.kits import KITS

    sims = {name: kit.start() for name, kit in KITS.items()}
    try:
        path = _all_four(tmp_path, sims)
        run = [sys.executable, "-m", "faxd", "check-config", "--online", "--config", str(path)]
        done = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        for name in KITS:
            assert f"  {name}: OK — " in done.stdout, done.stdout

        voipms: Any = sims["voipms"]
        configured = voipms.password
        voipms.password = "changed-in-the-portal-7Q"  # the one in the config is now wrong
        done = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 1
        assert "  voipms: FAILED — " in done.stdout
        assert "API password" in done.stdout.split("voipms: FAILED — ")[1].splitlines()[0]
        for name in ("faxage", "ifax", "faxnummer"):
            assert f"  {name}: OK — " in done.stdout
        secrets = [configured, sims["ifax"].token, sims["faxnummer"].code]
        assert not any(secret in done.stdout + done.stderr for secret in secrets)
    finally:
        for sim in sims.values():
            sim.stop()
