"""The folder action under a hostile tree and a careless umask (issue 10, findings 2, 5, 8).

- Modes: a delivered fax is 0640 and the folders faxd makes 0750 whatever the
  umask, or what the action's ``mode`` / ``group`` say.
- Links: below the template's root every folder is opened with O_NOFOLLOW
  through its parent's descriptor, so a symlink swapped in by someone who may
  write the tree is refused, even mid-delivery, and nothing lands outside.
- faxd's own spool file at the target path is not "already delivered".
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from faxd.actions.base import Deliverable
from faxd.actions.folder import FolderAction
from faxd.config import FolderSpec
from faxd.errors import DeliveryError

MakeItem = Callable[..., Deliverable]


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_default_modes_whatever_the_umask(tmp_path: Path, make_item: MakeItem) -> None:
    """Under umask 022 a fax is still 0640 and each folder faxd makes 0750 (not 0644/0755)."""
    root = tmp_path / "fax"
    action = FolderAction(FolderSpec(f"{root}/in/{{route}}/{{received:%Y}}/{{recvid}}.pdf"))
    with umask(0o022):
        final = Path(action.deliver(make_item(route="sales")))
    assert mode_of(final) == 0o640
    for folder in (root, root / "in", root / "in" / "sales", root / "in" / "sales" / "2024"):
        assert mode_of(folder) == 0o750, folder


def test_mode_and_group_of_the_action(
    tmp_path: Path, make_item: MakeItem, office_group: tuple[str, int]
) -> None:
    """``mode = "0660"`` with a group: files 0660, folders 0770, both of that group,
    even under a umask that would strip the group's bits."""
    name, gid = office_group
    root = tmp_path / "fax"
    spec = FolderSpec(f"{root}/{{route}}/{{recvid}}.pdf", mode=0o660, group=name, gid=gid)
    with umask(0o077):
        final = Path(FolderAction(spec).deliver(make_item(route="office")))
    assert (mode_of(final), final.stat().st_gid) == (0o660, gid)
    for folder in (root, root / "office"):
        assert (mode_of(folder), folder.stat().st_gid) == (0o770, gid), folder


def test_existing_folders_keep_their_mode(tmp_path: Path, make_item: MakeItem) -> None:
    """Folders the admin made are the admin's: faxd changes only what it creates."""
    root = tmp_path / "fax"
    root.mkdir()
    root.chmod(0o2775)
    FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf")).deliver(make_item())
    assert mode_of(root) == 0o2775


def test_a_symlink_below_the_root_is_refused_even_to_inside(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """A link is never followed below the root, even one pointing back inside the tree."""
    root = tmp_path / "fax"
    (root / "elsewhere").mkdir(parents=True)
    (root / "sales").symlink_to(root / "elsewhere")
    action = FolderAction(FolderSpec(f"{root}/{{route}}/{{recvid}}.pdf"))

    with pytest.raises(DeliveryError, match=r"fax/sales is a symbolic link") as caught:
        action.deliver(make_item(route="sales"))

    assert caught.value.transient is True  # the fax stays pending
    assert list((root / "elsewhere").iterdir()) == []


def test_a_link_at_the_final_name_is_never_followed(tmp_path: Path, make_item: MakeItem) -> None:
    """A symlink where the fax should go is "a different file", even to the same bytes:
    a link is not a delivery (its target can change under it)."""
    root = tmp_path / "fax"
    root.mkdir()
    item = make_item()
    (root / "other.pdf").write_bytes(item.path.read_bytes())
    (root / "4711.pdf").symlink_to(root / "other.pdf")

    with pytest.raises(DeliveryError, match="a different file is already at"):
        FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf")).deliver(item)


#: The attacker: points ``sales`` inside the tree, then outside, atomically, forever.
_SWAPPER = """
import os, sys
sales, inside, outside = sys.argv[1:4]
temp = sales + ".new"
while True:
    for target in (inside, outside):
        try:
            os.symlink(target, temp)
            os.replace(temp, sales)
        except OSError:
            pass
"""


def test_a_symlink_swapped_in_mid_delivery_never_gets_a_byte(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """An attacker process (its own CPU, no GIL shared) flips the route folder between a
    link to a folder inside the tree and one to outside, while faxes are delivered:
    a check-then-write by path loses that race; writing through O_NOFOLLOW descriptors
    refuses every fax (the fax stays pending) and not one byte lands outside."""
    root, outside = tmp_path / "fax", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    sales = root / "sales"
    sales.symlink_to(root / "real")
    action = FolderAction(FolderSpec(f"{root}/{{route}}/{{recvid}}.pdf"))
    attacker = subprocess.Popen(
        [sys.executable, "-c", _SWAPPER, str(sales), str(root / "real"), str(outside)]
    )
    rounds, refused = 2000, 0
    try:
        for recvid in range(1, rounds + 1):
            try:
                action.deliver(make_item(recvid=recvid, route="sales"))
            except DeliveryError:
                refused += 1
            assert list(outside.iterdir()) == [], f"written outside after {recvid} faxes"
    finally:
        attacker.kill()
        attacker.wait(timeout=30)
    assert refused == rounds
    assert list((root / "real").iterdir()) == []


def test_its_own_spool_file_is_not_a_delivery(spool_dir: Path, make_item: MakeItem) -> None:
    """A template pointing at the spool file is refused; the spool file is left alone."""
    item = make_item()
    action = FolderAction(FolderSpec(f"{spool_dir}/{{recvid}}.pdf"))
    with pytest.raises(DeliveryError, match="own spool file") as caught:
        action.deliver(item)
    assert caught.value.transient is False
    assert item.path.read_bytes()  # still there, untouched


#: The attacker: swaps the fax's final name between a copy of its bytes and a FIFO, forever.
_FIFO_SWAPPER = """
import os, sys
final, copy = sys.argv[1:3]
fifo, plain = final + ".fifo", final + ".plain"
while True:
    try:
        os.link(copy, plain)
        os.replace(plain, final)
        os.mkfifo(fifo)
        os.replace(fifo, final)
    except OSError:
        pass
"""


def test_a_fifo_swapped_in_at_the_final_name_never_hangs_a_delivery(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """Staff can write the inbox tree: a FIFO put where the fax goes, between faxd's look
    and its open, would block a plain open forever.  Every delivery must come back."""
    import threading

    root = tmp_path / "fax"
    root.mkdir()
    item = make_item(recvid=4711)
    copy = tmp_path / "copy.pdf"
    copy.write_bytes(item.path.read_bytes())
    action = FolderAction(FolderSpec(f"{root}/{{recvid}}.pdf"))
    attacker = subprocess.Popen(
        [sys.executable, "-c", _FIFO_SWAPPER, str(root / "4711.pdf"), str(copy)]
    )
    try:
        for round_no in range(400):
            done = threading.Event()

            def deliver(done: threading.Event = done) -> None:
                try:
                    action.deliver(item)
                except DeliveryError:
                    pass
                finally:
                    done.set()

            worker = threading.Thread(target=deliver, daemon=True)
            worker.start()
            assert done.wait(60), f"a delivery hung on a FIFO in round {round_no}"
    finally:
        attacker.kill()
        attacker.wait(timeout=30)
