"""Folders the systemd unit would not let faxd write are caught at load time (issue 10 #8).

The unit is read from a file given to :class:`~faxd.config.sandbox.UnitSource`
(or ``$FAXD_UNIT_FILE``): under systemd (``$INVOCATION_ID`` set) a folder outside
``ReadWritePaths`` refuses the config, elsewhere it is a warning that
``check-config`` prints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from faxd.check_config import render_config
from faxd.config import load_config
from faxd.config.sandbox import UnitSource, parse_unit
from faxd.errors import ConfigError

PASSWORD = "Ex4mple-faxage-pw"
SHIPPED_UNIT = Path(__file__).resolve().parent.parent / "systemd" / "faxd.service"


def site(tmp_path: Path, delivery: Path) -> Path:
    """A config whose state lives in ``tmp_path/state`` and faxes go to ``delivery``."""
    path = tmp_path / "faxd.toml"
    path.write_text(
        f'[faxage]\nusername = "acme"\ncompany = "12345"\npassword = "{PASSWORD}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/state/faxd.db"\n'
        f'[inbound]\nspool_dir = "{tmp_path}/state/spool"\n'
        '[[routes]]\nname = "default"\n'
        f'actions = [{{ type = "folder", path = "{delivery}/{{recvid}}.{{ext}}" }}]\n'
    )
    path.chmod(0o600)
    return path


def unit_for(tmp_path: Path, *extra: str) -> Path:
    """The shipped unit with ``tmp_path/state`` writable (as StateDirectory is) plus ``extra``."""
    unit = tmp_path / "faxd.service"
    lines = [f"ReadWritePaths={tmp_path}/state", *extra]
    unit.write_text(SHIPPED_UNIT.read_text().replace("[Service]", "[Service]\n" + "\n".join(lines)))
    return unit


def test_under_systemd_a_folder_outside_read_write_paths_is_refused(tmp_path: Path) -> None:
    config = site(tmp_path, tmp_path / "home" / "alice" / "faxes")
    source = UnitSource(env={"INVOCATION_ID": "x"}, files=[unit_for(tmp_path)])
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={}, unit=source)
    (problem,) = caught.value.problems
    assert "routes[0].actions[0].path" in problem
    assert f"{tmp_path}/home/alice/faxes is outside what the systemd unit" in problem
    assert "ReadWritePaths=" in problem and "systemctl edit faxd" in problem


def test_outside_systemd_it_is_a_warning_check_config_prints(tmp_path: Path) -> None:
    config = site(tmp_path, tmp_path / "home" / "alice" / "faxes")
    source = UnitSource(env={}, files=[unit_for(tmp_path)])
    loaded = load_config(config, env={}, unit=source)
    (warning,) = loaded.warnings
    assert warning.startswith("routes[0].actions[0].path: ") and "a warning here" in warning
    assert "Warnings" in render_config(loaded) and "alice" in render_config(loaded)


def test_a_drop_in_that_adds_the_folder_is_honoured(tmp_path: Path) -> None:
    """What `systemctl edit faxd` writes counts, as it does for systemd."""
    delivery = tmp_path / "home" / "alice" / "faxes"
    dropin = tmp_path / "override.conf"
    dropin.write_text(f"[Service]\nReadWritePaths={tmp_path}/home/alice\n")
    source = UnitSource(env={"INVOCATION_ID": "x"}, files=[unit_for(tmp_path), dropin])
    assert load_config(site(tmp_path, delivery), env={}, unit=source).warnings == ()


def test_the_unit_is_found_in_systemds_folders_with_its_drop_ins(tmp_path: Path) -> None:
    """Searching: the unit this process runs as (its cgroup), then its .d/*.conf."""
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    (lib).mkdir()
    (lib / "fax-office.service").write_text("[Service]\nProtectSystem=strict\n")
    (etc / "fax-office.service.d").mkdir(parents=True)
    (etc / "fax-office.service.d" / "50-paths.conf").write_text(
        "[Service]\nReadWritePaths=-/srv/faxes \\\n  /var/spool/x\n"
    )
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("0::/system.slice/fax-office.service\n")
    source = UnitSource(env={"INVOCATION_ID": "x"}, unit_dirs=(etc, lib), cgroup=cgroup)
    sandbox = source.sandbox()
    assert sandbox is not None
    assert sandbox.writable(Path("/srv/faxes/in")) and sandbox.writable(Path("/var/spool/x"))
    assert not sandbox.writable(Path("/home/alice"))


def test_no_unit_no_check(tmp_path: Path) -> None:
    source = UnitSource(env={"INVOCATION_ID": "x"}, unit_dirs=(tmp_path,))
    assert source.sandbox() is None
    loaded = load_config(site(tmp_path, tmp_path / "anywhere"), env={}, unit=source)
    assert loaded.warnings == ()


def test_the_shipped_unit_model() -> None:
    """ProtectSystem=strict: /srv/fax and /var/lib/faxd writable; /home, /etc, /usr not."""
    sandbox = parse_unit([SHIPPED_UNIT.read_text()], name="faxd.service")
    for ok in ("/srv/fax/inbox/2024", "/var/lib/faxd/spool"):
        assert sandbox.writable(Path(ok)), ok
    for not_ok in ("/home/alice/faxes", "/etc/faxd", "/usr/share/fax", "/mnt/share", "/tmp/x"):
        assert not sandbox.writable(Path(not_ok)), not_ok


def test_faxd_run_under_systemd_refuses_to_start(tmp_path: Path) -> None:
    """`faxd run` itself (a real process, $INVOCATION_ID and $FAXD_UNIT_FILE set) exits 2."""
    config = site(tmp_path, tmp_path / "home" / "alice" / "faxes")
    done = subprocess.run(
        [sys.executable, "-m", "faxd", "run", "--once", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "INVOCATION_ID": "0123",
             "FAXD_UNIT_FILE": str(unit_for(tmp_path))},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "routes[0].actions[0].path" in done.stderr and "ReadWritePaths=" in done.stderr
