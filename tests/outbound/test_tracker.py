"""FileStabilityTracker: a file is due only after it stays unchanged for settle_seconds."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from faxd.outbound.tracker import FileStabilityTracker


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeFiles:
    """lstat results the test controls: path -> (size, mtime_ns)."""

    def __init__(self) -> None:
        self.files: dict[Path, tuple[int, int]] = {}

    def __call__(self, path: Path) -> os.stat_result:
        if path not in self.files:
            raise FileNotFoundError(path)
        size, mtime_ns = self.files[path]
        seconds = mtime_ns // 10**9
        # (mode, ino, dev, nlink, uid, gid, size, atime, mtime, ctime, then floats, then _ns)
        fields = (0o100644, 7, 0, 1, 0, 0, size, 0, seconds, 0, 0.0, float(seconds), 0.0)
        return os.stat_result((*fields, 0, mtime_ns, 0))


def make() -> tuple[FileStabilityTracker, FakeClock, FakeFiles]:
    clock, fs = FakeClock(), FakeFiles()
    return FileStabilityTracker(2.0, clock=clock, stat_fn=fs), clock, fs


def test_unchanged_file_is_due_after_settle_seconds() -> None:
    """A quiet file becomes due once settle_seconds have passed, not before."""
    tracker, clock, fs = make()
    path = Path("/out/3035551212.pdf")
    fs.files[path] = (100, 1_000_000_000)
    tracker.observe(path)
    clock.advance(1.9)
    assert tracker.due() == []
    clock.advance(0.1)
    assert tracker.due() == [path]


def test_due_hands_a_path_out_once() -> None:
    """Once handed out, a path is no longer tracked, so it cannot be taken twice."""
    tracker, clock, fs = make()
    path = Path("/out/a.pdf")
    fs.files[path] = (1, 1_000_000_000)
    tracker.observe(path)
    clock.advance(5)
    assert tracker.due() == [path]
    clock.advance(5)
    assert tracker.due() == []
    assert path not in tracker


def test_growing_file_restarts_the_settle_period() -> None:
    """A file whose size changes between looks is not due until it stops changing."""
    tracker, clock, fs = make()
    path = Path("/out/slow.pdf")
    fs.files[path] = (10, 1_000_000_000)
    tracker.observe(path)
    for size in range(20, 200, 10):  # a slow writer: 10 bytes per 1.5 s
        clock.advance(1.5)
        fs.files[path] = (size, 1_000_000_000 + size)
        assert tracker.due() == []
    clock.advance(1.5)
    assert tracker.due() == []  # unchanged for 1.5 s only
    clock.advance(0.5)
    assert tracker.due() == [path]


def test_mtime_change_with_same_size_restarts_settling() -> None:
    """A rewrite of the same length still counts as a change."""
    tracker, clock, fs = make()
    path = Path("/out/a.pdf")
    fs.files[path] = (10, 1_000_000_000)
    tracker.observe(path)
    clock.advance(1.5)
    fs.files[path] = (10, 2_000_000_000)
    assert tracker.due() == []
    clock.advance(1.5)
    assert tracker.due() == []
    clock.advance(0.5)
    assert tracker.due() == [path]


def test_new_event_restarts_settling_even_without_visible_change() -> None:
    """A close event (a scanner closing and reopening) resets the quiet period."""
    tracker, clock, fs = make()
    path = Path("/out/scan.pdf")
    fs.files[path] = (10, 1_000_000_000)
    tracker.observe(path)
    clock.advance(1.5)
    tracker.observe(path)
    clock.advance(1.5)
    assert tracker.due() == []
    clock.advance(0.5)
    assert tracker.due() == [path]


def test_vanished_file_is_dropped() -> None:
    """A file removed before it settled is forgotten, not handed out."""
    tracker, clock, fs = make()
    path = Path("/out/gone.pdf")
    fs.files[path] = (10, 1)
    tracker.observe(path)
    del fs.files[path]
    clock.advance(10)
    assert tracker.due() == []
    assert len(tracker) == 0


def test_observe_of_missing_path_tracks_nothing() -> None:
    """An event for a path that is already gone (moved away) adds nothing."""
    tracker, _clock, _fs = make()
    tracker.observe(Path("/out/never.pdf"))
    assert len(tracker) == 0


def test_many_files_come_due_in_order_of_arrival() -> None:
    """Several settled files are all handed out, in the order they were seen."""
    tracker, clock, fs = make()
    paths = [Path(f"/out/{n:010d}.pdf") for n in range(5, 0, -1)]
    for path in paths:
        fs.files[path] = (1, 1)
        tracker.observe(path)
    clock.advance(2)
    assert tracker.due() == paths


def test_real_file_on_disk(tmp_path: Path) -> None:
    """With the default lstat, a real file appended to is held back until it settles."""
    clock = FakeClock()
    tracker = FileStabilityTracker(2.0, clock=clock)
    path = tmp_path / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    tracker.observe(path)
    clock.advance(1)
    with path.open("ab") as out:
        out.write(b"more bytes")
    clock.advance(1.5)
    assert tracker.due() == []
    clock.advance(2)
    assert tracker.due() == [path]


def test_file_open_for_writing_is_never_due_until_closed() -> None:
    """A write without a close-for-write keeps a file waiting however long it stays unchanged."""
    tracker, clock, fs = make()
    path = Path("/out/3035551212.pdf")
    fs.files[path] = (0, 1_000_000_000)
    tracker.created(path)
    fs.files[path] = (4096, 2_000_000_000)
    tracker.written(path)
    clock.advance(3599)
    assert tracker.due() == []  # most of an hour unchanged, still open: a scanner pausing
    tracker.closed(path)
    clock.advance(1.9)
    assert tracker.due() == []  # closed, but not yet quiet for settle_seconds
    clock.advance(0.1)
    assert tracker.due() == [path]


def test_rescan_does_not_clear_the_open_for_writing_mark() -> None:
    """A scan's observe() of a file being written leaves it waiting for its close."""
    tracker, clock, fs = make()
    path = Path("/out/3035551212.pdf")
    fs.files[path] = (10, 1_000_000_000)
    tracker.written(path)
    tracker.observe(path)
    clock.advance(10)
    assert tracker.due() == []


def test_created_non_empty_file_is_not_waiting_for_a_close() -> None:
    """A hard link or a file created with content (no writer open) settles on the pause alone."""
    tracker, clock, fs = make()
    path = Path("/out/3035551212.pdf")
    fs.files[path] = (100, 1_000_000_000)
    tracker.created(path)
    clock.advance(2.0)
    assert tracker.due() == [path]


def test_write_after_close_waits_for_the_next_close() -> None:
    """Closed, then opened and written again: not due until that writer closes too."""
    tracker, clock, fs = make()
    path = Path("/out/3035551212.pdf")
    fs.files[path] = (100, 1_000_000_000)
    tracker.written(path)
    tracker.closed(path)
    clock.advance(1.0)
    fs.files[path] = (200, 3_000_000_000)
    tracker.written(path)
    clock.advance(10)
    assert tracker.due() == []
    tracker.closed(path)
    clock.advance(2.0)
    assert tracker.due() == [path]


def test_lost_close_is_presumed_after_open_write_timeout() -> None:
    """A file marked open but unchanged for open_write_timeout is taken (inotify lost its close)."""
    clock, fs = FakeClock(), FakeFiles()
    tracker = FileStabilityTracker(2.0, clock=clock, stat_fn=fs, open_write_timeout=600.0)
    path = Path("/out/3035551212.pdf")
    fs.files[path] = (10, 1_000_000_000)
    tracker.written(path)
    clock.advance(599)
    assert tracker.due() == []
    clock.advance(1)
    assert tracker.due() == [path]


def test_new_empty_file_waits_for_its_first_close() -> None:
    """A scanner that creates its file and only writes later: created alone means open."""
    tracker, clock, fs = make()
    path = Path("/out/3035551212.pdf")
    fs.files[path] = (0, 1_000_000_000)
    tracker.created(path)
    clock.advance(60)
    assert tracker.due() == []
    tracker.closed(path)
    clock.advance(2.0)
    assert tracker.due() == [path]
