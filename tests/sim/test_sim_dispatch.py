"""`python -m faxd.sim --provider NAME`: FAXAGE by default, others from their own sim module.

The other providers' simulators live in their packages and are imported only
when asked for; these tests hand ``main`` the import function so they do not
depend on which of those packages this checkout holds.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Sequence
from types import ModuleType

import pytest

from faxd.sim.__main__ import main


class FakeSim(ModuleType):
    """A provider sim module: records the argv its ``main`` was given."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls: list[list[str]] = []

    def main(self, argv: Sequence[str]) -> int:
        self.calls.append(list(argv))
        return 7


def test_other_provider_gets_its_own_command_line() -> None:
    imported: list[str] = []
    fake = FakeSim("faxd.providers.voipms.sim")

    def importer(name: str) -> ModuleType:
        imported.append(name)
        return fake

    status = main(["--port", "0", "--provider", "voipms", "--seed", "3"], import_module=importer)
    assert status == 7
    assert imported == ["faxd.providers.voipms.sim"]
    assert fake.calls == [["--port", "0", "--seed", "3"]]


@pytest.mark.parametrize("missing", ["faxd.providers.ifax", "faxd.providers.ifax.sim"])
def test_absent_simulator_is_a_clear_error(
    missing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def importer(name: str) -> ModuleType:
        raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)

    assert main(["--provider", "ifax"], import_module=importer) == 2
    err = capsys.readouterr().err
    assert "this faxd has no ifax simulator (faxd.providers.ifax.sim is missing)" in err


def test_a_broken_simulator_is_not_called_absent() -> None:
    """A module the simulator itself imports being absent is raised as it is, not hidden."""

    def importer(name: str) -> ModuleType:
        raise ModuleNotFoundError("No module named 'lxml'", name="lxml")

    with pytest.raises(ModuleNotFoundError, match="lxml"):
        main(["--provider", "ifax"], import_module=importer)


def test_unknown_provider_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--provider", "fax.com"])
    assert exited.value.code == 2
    assert "invalid choice: 'fax.com'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["--provider", "faxage"]])
def test_faxage_is_the_default_and_never_imports(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """FAXAGE's own simulator runs (here: meets a busy port) without importing anything."""

    def importer(name: str) -> ModuleType:
        raise AssertionError(f"imported {name}")

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            assert main([*argv, "--port", str(port)], import_module=importer) == 1
    finally:  # the simulator set its own stop handlers in this (pytest's) process
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
