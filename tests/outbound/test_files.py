"""Safe moves: never overwrite, never follow a link, reasons are one line."""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePath

import pytest

from faxd.outbound.files import (
    candidate_names,
    move_no_clobber,
    open_folder,
    reason_path,
    unlink_if_same,
    write_reason,
)


def test_candidate_names_add_the_tag_before_the_extension() -> None:
    """A clash is resolved by adding the tag (the job id), then a counter."""
    names = candidate_names("3035551212 - Acme.pdf", "42")
    assert names[:3] == [
        "3035551212 - Acme.pdf",
        "3035551212 - Acme-42.pdf",
        "3035551212 - Acme-42-2.pdf",
    ]
    assert candidate_names("README", "7")[:2] == ["README", "README-7"]


def test_move_never_overwrites(tmp_path: Path) -> None:
    """An existing file of the same name is kept; the moved one gets the tag."""
    src = tmp_path / "spool" / "9-a.pdf"
    src.parent.mkdir()
    src.write_bytes(b"new")
    dest_dir = tmp_path / "sent"
    dest_dir.mkdir()
    (dest_dir / "a.pdf").write_bytes(b"old")
    placed = move_no_clobber(src, dest_dir, "a.pdf", tag="9")
    assert placed == dest_dir / "a-9.pdf"
    assert placed.read_bytes() == b"new"
    assert (dest_dir / "a.pdf").read_bytes() == b"old"
    assert not src.exists()


def test_symlink_is_moved_as_a_link(tmp_path: Path) -> None:
    """Moving a symlink moves the link itself; its target is neither read nor moved."""
    target = tmp_path / "secret.pdf"
    target.write_bytes(b"private")
    link = tmp_path / "outbox" / "3035551212.pdf"
    link.parent.mkdir()
    os.symlink(target, link)
    placed = move_no_clobber(link, tmp_path / "failed", link.name, tag="x")
    assert placed.is_symlink() and os.readlink(placed) == str(target)
    assert target.read_bytes() == b"private"
    assert not os.path.lexists(link)


def test_reason_is_one_line(tmp_path: Path) -> None:
    """Whatever the reason text holds, the .txt beside the file is a single line."""
    path = reason_path(tmp_path / "a.pdf")
    write_reason(path, "FAXAGE could not deliver:\nBusy\r\n  try again")
    assert path.name == "a.pdf.txt"
    assert path.read_text() == "FAXAGE could not deliver: Busy try again\n"


def test_unlink_if_same_leaves_a_swapped_in_file_alone(tmp_path: Path) -> None:
    """The source is removed only if its name still leads to the inode that was copied."""
    path = tmp_path / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 taken")
    taken = os.lstat(path)
    newer = tmp_path / ".newer"
    newer.write_bytes(b"%PDF-1.4 dropped meanwhile")
    os.replace(newer, path)  # a new document under the same name
    assert unlink_if_same(path, taken) is False
    assert path.read_bytes() == b"%PDF-1.4 dropped meanwhile"
    assert unlink_if_same(path, os.lstat(path)) is True
    assert not os.path.lexists(path)


def _swap_for_link(tmp_path: Path) -> tuple[Path, Path, int]:
    """outbox/sub/a.exe, its folder pinned, then outbox/sub swapped for a link to private/."""
    outbox, private = tmp_path / "outbox", tmp_path / "private"
    (outbox / "sub").mkdir(parents=True)
    private.mkdir()
    (outbox / "sub" / "a.exe").write_bytes(b"outbox file")
    (private / "a.exe").write_bytes(b"precious")
    pinned = open_folder(outbox, PurePath("sub/a.exe"))
    os.rename(outbox / "sub", outbox / ".old")
    os.symlink(private, outbox / "sub")
    return outbox, private, pinned


def test_open_folder_refuses_a_linked_folder_and_dot_dot(tmp_path: Path) -> None:
    """No component between the hot folder and the file is followed when it is a link."""
    outbox, _private, pinned = _swap_for_link(tmp_path)
    os.close(pinned)
    with pytest.raises(OSError) as refused:
        open_folder(outbox, PurePath("sub/a.exe"))
    assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR)
    with pytest.raises(OSError):
        open_folder(outbox / ".old", PurePath("../../private/a.exe"))


def test_move_and_unlink_in_a_pinned_folder_never_reach_through_a_swapped_link(
    tmp_path: Path,
) -> None:
    """With the folder pinned, moving or unlinking ``sub/a.exe`` acts on the outbox file only."""
    outbox, private, pinned = _swap_for_link(tmp_path)
    try:
        precious = os.lstat(private / "a.exe")
        assert unlink_if_same(outbox / "sub" / "a.exe", precious, dir_fd=pinned) is False
        moved = move_no_clobber(
            outbox / "sub" / "a.exe", tmp_path / "failed", "a.exe", tag="x", src_dir_fd=pinned
        )
    finally:
        os.close(pinned)
    assert moved.read_bytes() == b"outbox file"
    assert (private / "a.exe").read_bytes() == b"precious"
    assert not (outbox / ".old" / "a.exe").exists()


def test_a_move_cut_off_after_its_link_is_finished_not_doubled(tmp_path: Path) -> None:
    """SIGKILL between the link into sent/ and the unlink of the spool copy: the next
    pass finishes that move; the file never gets a second name (``-<job id>``)."""
    spool, sent = tmp_path / "spool", tmp_path / "sent"
    spool.mkdir()
    sent.mkdir()
    src = spool / "22-report.pdf"
    src.write_bytes(b"%PDF-1.4 report")
    os.link(src, sent / "report.pdf")  # where the killed move got to
    placed = move_no_clobber(src, sent, "report.pdf", tag="22")
    assert placed == sent / "report.pdf"
    assert sorted(p.name for p in sent.iterdir()) == ["report.pdf"]
    assert not src.exists()
    other = spool / "23-report.pdf"  # another document of the same name keeps its tag
    other.write_bytes(b"%PDF-1.4 another report")
    assert move_no_clobber(other, sent, "report.pdf", tag="23") == sent / "report-23.pdf"
