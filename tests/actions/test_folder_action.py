"""The folder action: atomic, idempotent writes that never leave the template's root."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from faxd.actions.base import Deliverable
from faxd.actions.folder import FolderAction, TempSweeper, template_root
from faxd.config import FolderSpec
from faxd.errors import DeliveryError

MakeItem = Callable[..., Deliverable]


def files_under(root: Path) -> list[str]:
    """Every file below ``root`` (hidden ones included), relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_writes_the_fax_at_the_rendered_path(tmp_path: Path, make_item: MakeItem) -> None:
    """The file lands at the template's path with the spool file's exact bytes."""
    root = tmp_path / "fax"
    action = FolderAction(FolderSpec(f"{root}/{{route}}/{{received:%Y-%m}}/{{recvid}}.{{ext}}"))
    item = make_item(recvid=4711, route="sales")

    detail = action.deliver(item)

    expected = root / "sales" / "2024-03" / "4711.pdf"
    assert detail == str(expected)
    assert expected.read_bytes() == item.path.read_bytes()
    assert files_under(root) == ["sales/2024-03/4711.pdf"]  # no temporary file left


def test_tiff_gets_the_tif_extension(tmp_path: Path, make_item: MakeItem) -> None:
    """``{ext}`` follows the file's content: a TIFF fax is written as .tif."""
    action = FolderAction(FolderSpec(f"{tmp_path}/{{recvid}}.{{ext}}"))
    item = make_item(recvid=8, kind="tiff")
    detail = action.deliver(item)
    assert detail == str(tmp_path / "8.tif")
    assert Path(detail).read_bytes() == item.path.read_bytes()


def test_redelivery_of_the_same_fax_is_a_success_without_a_copy(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """Delivering the same bytes again returns the same path and adds no "(1)" file."""
    root = tmp_path / "fax"
    action = FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf"))
    item = make_item()
    first = action.deliver(item)
    second = action.deliver(item)
    assert first == second
    assert files_under(root) == ["4711.pdf"]


def test_a_different_file_at_the_path_is_never_overwritten(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """Other bytes already at the path: permanent error naming the path, file untouched."""
    root = tmp_path / "fax"
    root.mkdir()
    (root / "4711.pdf").write_bytes(b"%PDF-1.4 someone else's document")
    action = FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf"))

    with pytest.raises(DeliveryError) as caught:
        action.deliver(make_item())

    assert caught.value.transient is False
    assert f"a different file is already at {root / '4711.pdf'}" in str(caught.value)
    assert "move it away" in str(caught.value)
    assert (root / "4711.pdf").read_bytes() == b"%PDF-1.4 someone else's document"
    assert files_under(root) == ["4711.pdf"]


def test_stale_temporary_from_a_crash_is_cleaned_up(tmp_path: Path, make_item: MakeItem) -> None:
    """A temporary left by a killed earlier attempt is removed once delivery succeeds."""
    root = tmp_path / "fax"
    root.mkdir()
    (root / ".4711.pdf.faxd-tmp-0123456789ab").write_bytes(b"%PDF-1.4 half")
    FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf")).deliver(make_item())
    assert files_under(root) == ["4711.pdf"]


def test_the_folder_is_swept_once_per_run_and_never_of_this_runs_temporaries(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """A run's first delivery into a folder removes other runs' temps, never its own."""
    root = tmp_path / "fax"
    root.mkdir()
    run = TempSweeper(run="run1")
    in_flight = root / run.temp_name("2.pdf")  # another thread of this run, mid-copy
    in_flight.write_bytes(b"%PDF-1.4 being written")
    (root / ".3.pdf.faxd-tmp-run0-0123456789ab").write_bytes(b"%PDF-1.4 half")
    action = FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf"), sweeper=run)
    action.deliver(make_item(recvid=1))
    assert files_under(root) == [in_flight.name, "1.pdf"]
    # Litter appearing later is not looked for again in this run (one listing
    # per folder, not per fax); the next run's first delivery takes it.
    (root / ".5.pdf.faxd-tmp-run0-0123456789ab").write_bytes(b"%PDF-1.4 half")
    action.deliver(make_item(recvid=4))
    assert len(files_under(root)) == 4
    restarted = FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf"), sweeper=TempSweeper(run="run2"))
    restarted.deliver(make_item(recvid=6))
    assert files_under(root) == ["1.pdf", "4.pdf", "6.pdf"]


@pytest.mark.parametrize(
    ("dnis", "cid"),
    [
        ("../../etc/passwd", "3035550100"),
        ("3035550101", "/etc/cron.d/evil"),
        ("..", ".."),
        ("3035550101", "7" * 300),
        ("3035550101", "-rf \x00\n..\\..\\win"),
    ],
)
def test_hostile_values_stay_under_the_root(
    tmp_path: Path, make_item: MakeItem, dnis: str, cid: str
) -> None:
    """Slashes, dots, NULs and 300-character values become one safe name under the root."""
    root = tmp_path / "fax"
    action = FolderAction(FolderSpec(f"{root}/{{dnis}}/{{cid}}-{{recvid}}.pdf"))

    item = make_item(dnis=dnis, cid=cid)
    final = Path(action.deliver(item))

    assert final.resolve().is_relative_to(root.resolve())
    assert final.parent.parent == root
    assert all(len(part) <= 255 for part in final.parts)
    assert final.read_bytes() == item.path.read_bytes()
    assert not (tmp_path / "etc").exists()


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path, make_item: MakeItem) -> None:
    """A folder under the root that links elsewhere is not written through."""
    root, outside = tmp_path / "fax", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "sales").symlink_to(outside)
    action = FolderAction(FolderSpec(f"{root}/{{route}}/{{recvid}}.pdf"))

    with pytest.raises(DeliveryError, match="outside") as caught:
        action.deliver(make_item(route="sales"))

    assert caught.value.transient is False
    assert list(outside.iterdir()) == []


def test_an_unwritable_folder_is_a_clear_error(read_only_dir: Path, make_item: MakeItem) -> None:
    """Permission denied names the file, the folder and the fix, and may be retried."""
    action = FolderAction(FolderSpec(f"{read_only_dir}/{{recvid}}.pdf"))

    with pytest.raises(DeliveryError) as caught:
        action.deliver(make_item())

    message = str(caught.value)
    assert "permission denied" in message
    assert str(read_only_dir) in message
    assert "write to" in message
    assert caught.value.transient is True
    assert list(read_only_dir.iterdir()) == []


def test_a_file_where_a_folder_should_be_is_a_clear_error(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """A path component that is a file (not a folder) fails with the path in the message."""
    (tmp_path / "sales").write_text("not a folder")
    action = FolderAction(FolderSpec(f"{tmp_path}/{{route}}/{{recvid}}.pdf"))

    with pytest.raises(DeliveryError, match=r"cannot write .*sales/4711\.pdf"):
        action.deliver(make_item(route="sales"))


def test_spool_file_changed_after_download_is_refused(tmp_path: Path, make_item: MakeItem) -> None:
    """Bytes that no longer match the recorded sha256 are not delivered, and no temp remains."""
    root = tmp_path / "fax"
    item = make_item()
    item.path.write_bytes(b"%PDF-1.4 tampered")
    with pytest.raises(DeliveryError, match="no longer matches") as caught:
        FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf")).deliver(item)
    assert caught.value.transient is False
    assert files_under(root) == []


def test_missing_spool_file_is_a_clear_error(tmp_path: Path, make_item: MakeItem) -> None:
    """A spool file that vanished is reported by its path."""
    item = make_item()
    os.unlink(item.path)
    with pytest.raises(DeliveryError, match="cannot read the spool file"):
        FolderAction(FolderSpec(f"{tmp_path}/out/{{recvid}}.pdf")).deliver(item)


@pytest.mark.parametrize(
    ("template", "root"),
    [
        ("/srv/fax/sales/{received:%Y-%m}/{recvid}.pdf", "/srv/fax/sales"),
        ("/srv/fax/inbox/fax-{recvid}.pdf", "/srv/fax/inbox"),
        ("/{recvid}.pdf", "/"),
        ("/srv/fax/all.pdf", "/srv/fax"),
        ("/home/{{weird}}/fax/{recvid}.pdf", "/home/{weird}/fax"),
        ("/srv/a{{b/{recvid}.pdf", "/srv/a{b"),
    ],
)
def test_template_root_is_the_folder_before_the_first_field(template: str, root: str) -> None:
    """The fixed root is the template's literal text before its first field, cut at the last /."""
    assert template_root(template) == Path(root)


def test_target_describes_the_template() -> None:
    """The human description of the action names its template."""
    action = FolderAction(FolderSpec("/srv/fax/{recvid}.pdf"))
    assert (action.type, action.target) == ("folder", "folder /srv/fax/{recvid}.pdf")


def test_a_template_the_renderer_refuses_is_a_permanent_error(make_item: MakeItem) -> None:
    """A bad template (unknown field) fails delivery with the template named, not a crash."""
    action = FolderAction(FolderSpec("/srv/fax/{sender}/{recvid}.pdf"))
    with pytest.raises(DeliveryError, match=r"\{sender\}") as caught:
        action.deliver(make_item())
    assert caught.value.transient is False
