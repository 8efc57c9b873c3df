"""The print action, run against stand-in ``lp`` programs written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faxd.actions.base import Deliverable
from faxd.actions.print import PrintAction
from faxd.config import PrintSpec
from faxd.errors import DeliveryError

MakeItem = Callable[..., Deliverable]


def test_prints_with_lp_and_returns_the_job_id(make_item: MakeItem, make_lp: Any) -> None:
    """lp gets printer, copies, every option, a title and the file; its job id is the detail."""
    lp = make_lp()
    spec = PrintSpec(
        printer="sales-laser",
        options=("sides=two-sided-long-edge", "media=Letter"),
        copies=2,
        command=lp.command,
    )
    item = make_item(recvid=4711, cid="3035550100")

    job = PrintAction(spec).deliver(item)

    assert job == "sales-laser-42"
    assert lp.calls() == [
        [
            "-d", "sales-laser",
            "-n", "2",
            "-o", "sides=two-sided-long-edge",
            "-o", "media=Letter",
            "-t", "Fax 4711 from 3035550100",
            str(item.path),
        ]
    ]  # fmt: skip


def test_title_says_unknown_caller_when_there_is_no_caller_id(
    make_item: MakeItem, make_lp: Any
) -> None:
    """A fax without caller id is titled "from unknown caller"."""
    lp = make_lp()
    PrintAction(PrintSpec(printer="p", command=lp.command)).deliver(make_item(recvid=5, cid=""))
    argv = lp.calls()[0]
    assert argv[argv.index("-t") + 1] == "Fax 5 from unknown caller"


def test_failing_lp_is_a_transient_error_with_its_stderr(make_item: MakeItem, make_lp: Any) -> None:
    """lp exiting 1 fails the delivery, retryably, quoting what lp said."""
    lp = make_lp(stdout="", stderr="lp: The printer or class does not exist.\n", exit_code=1)
    with pytest.raises(DeliveryError) as caught:
        PrintAction(PrintSpec(printer="nope", command=lp.command)).deliver(make_item())
    assert caught.value.transient is True
    assert "exit 1" in str(caught.value)
    assert "The printer or class does not exist." in str(caught.value)


def test_lp_stderr_is_truncated_in_the_error(make_item: MakeItem, make_lp: Any) -> None:
    """A flood on lp's stderr is cut short in the error message."""
    lp = make_lp(stdout="", stderr="x" * 20_000, exit_code=2)
    with pytest.raises(DeliveryError) as caught:
        PrintAction(PrintSpec(printer="p", command=lp.command)).deliver(make_item())
    assert len(str(caught.value)) < 1000


def test_lp_without_a_job_id_is_not_a_success(make_item: MakeItem, make_lp: Any) -> None:
    """Exit 0 without "request id is ..." does not count as printed."""
    lp = make_lp(stdout="spooled, maybe\n")
    with pytest.raises(DeliveryError, match="did not report a job id") as caught:
        PrintAction(PrintSpec(printer="p", command=lp.command)).deliver(make_item())
    assert caught.value.transient is True


def test_missing_lp_says_to_install_cups_client(tmp_path: Path, make_item: MakeItem) -> None:
    """An lp that is not installed is named, with the package to install."""
    missing = str(tmp_path / "no-such-lp")
    with pytest.raises(DeliveryError) as caught:
        PrintAction(PrintSpec(printer="p", command=missing)).deliver(make_item())
    assert missing in str(caught.value)
    assert "cups-client" in str(caught.value)
    assert caught.value.transient is False


def test_lp_found_on_the_path_given(tmp_path: Path, make_item: MakeItem, make_lp: Any) -> None:
    """A bare command name is looked up on the PATH of the environment faxd passes."""
    lp = make_lp()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lp").symlink_to(lp.command)
    action = PrintAction(PrintSpec(printer="p"), env={"PATH": str(bin_dir)})
    assert action.deliver(make_item()) == "sales-laser-42"
    assert len(lp.calls()) == 1


def test_hanging_lp_is_killed_and_reported(make_item: MakeItem, make_lp: Any) -> None:
    """lp that does not return within the time limit is killed; the error is transient."""
    lp = make_lp(sleep=30)
    action = PrintAction(PrintSpec(printer="p", command=lp.command), timeout=0.5)
    with pytest.raises(DeliveryError, match=r"did not finish within 0\.5 s") as caught:
        action.deliver(make_item())
    assert caught.value.transient is True


def test_target_names_the_printer() -> None:
    """The human description of the action names its printer."""
    action = PrintAction(PrintSpec(printer="sales-laser"))
    assert (action.type, action.target) == ("print", "printer sales-laser")


def test_lp_does_not_get_faxds_passwords(tmp_path: Path, make_item: MakeItem) -> None:
    """A password faxd got through its environment is not handed on to lp."""
    script = tmp_path / "lp-env"
    script.write_text(
        "#!/bin/sh\n"
        'echo "request id is p-${FAXD_FAXAGE_PASSWORD:-none}${FAXD_SMTP_PASSWORD:-none}-7"\n'
    )
    script.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "FAXD_FAXAGE_PASSWORD": "fx", "FAXD_SMTP_PASSWORD": "sm"}
    action = PrintAction(PrintSpec(printer="p", command=str(script)), env=env)

    assert action.deliver(make_item()) == "p-nonenone-7"
