"""FAXAGE behind the provider interface: cursor, unreadable lines, release, login message.

The adapter wraps the FAXAGE calls (here the in-memory ``FakeInbox``, which has
the FaxageClient methods); what the pipeline sees must carry everything FAXAGE
gave before: the recvid cursor, the malformed lines, delfax or nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from inbound_helpers import SALES, FakeInbox, make_config

from faxd.errors import AuthError, PermanentError
from faxd.providers.base import Release
from faxd.providers.faxage.provider import FaxageInbound, make_inbound
from faxd.providers.faxage.records import MalformedLine

NOW = datetime(2024, 3, 4, 10, 0)


def test_the_cursor_is_the_highest_recvid_of_each_batch(inbox: FakeInbox) -> None:
    """listfax after the cursor, batch by batch; each batch carries its highest recvid."""
    faxes = [inbox.add(SALES) for _ in range(5)]
    inbox.batch_size = 2
    adapter = FaxageInbound(inbox, "acme@12345")
    batches = list(adapter.list_new(None, now=NOW))
    assert [b.cursor for b in batches] == ["1002", "1004", "1005"]
    assert [f.remote_id for b in batches for f in b.faxes] == [f.remote_id for f in faxes]
    assert inbox.calls[-1] == ("listfax", None)
    list(adapter.list_new("1004", now=NOW))
    assert inbox.calls[-1] == ("listfax", 1004)


def test_an_empty_answer_leaves_the_cursor_and_a_sweep_never_moves_it(inbox: FakeInbox) -> None:
    """Nothing new: the cursor stays (``cursor`` of the batch repeats it, never 0)."""
    adapter = FaxageInbound(inbox, "acme@12345")
    assert [b.cursor for b in adapter.list_new("1009", now=NOW)] == ["1009"]
    assert [b.cursor for b in adapter.list_new(None, now=NOW)] == [None]
    inbox.add(SALES)
    assert [b.cursor for b in adapter.list_all(now=NOW)] == [None]
    assert inbox.calls[-1] == ("listfax", None)


def test_malformed_lines_become_unreadable_records(inbox: FakeInbox) -> None:
    """Each malformed listfax line reaches the pipeline with its number, text and reason."""
    inbox.malformed = [MalformedLine(3, "12x\tgarbage", "recvid is not a number")]
    adapter = FaxageInbound(inbox, "acme@12345")
    (batch,) = adapter.list_new(None, now=NOW)
    assert [(u.lineno, u.text, u.reason) for u in batch.unreadable] == [
        (3, "12x\tgarbage", "recvid is not a number")
    ]


def test_release_is_delfax_or_nothing_when_faxes_are_kept(inbox: FakeInbox, tmp_path: Path) -> None:
    """delete_after_delivery = false: Release.KEEP, and release() never calls delfax."""
    fax = inbox.add(SALES)
    deleting = make_inbound(make_config(tmp_path, ()), client=inbox)
    keeping = make_inbound(make_config(tmp_path, (), delete_after_delivery=False), client=inbox)
    assert (deleting.capabilities.release, keeping.capabilities.release) == (
        Release.DELETE,
        Release.KEEP,
    )
    keeping.release(fax.remote_id)
    assert inbox.count("delfax") == 0 and not fax.deleted
    deleting.release(fax.remote_id)
    assert inbox.calls[-1] == ("delfax", fax.recvid) and fax.deleted


def test_download_maps_getfax_and_refuses_an_id_that_is_no_recvid(
    inbox: FakeInbox, tmp_path: Path
) -> None:
    """getfax's checked file comes back as Downloaded; a foreign id is never sent to FAXAGE."""
    fax = inbox.add(SALES)
    adapter = FaxageInbound(inbox, "acme@12345")
    got = adapter.download(fax.remote_id, tmp_path / "f.part", max_bytes=1000)
    assert (got.path.read_bytes(), got.size, got.kind) == (fax.data, len(fax.data), "pdf")
    assert inbox.getfax_limits == [1000]
    with pytest.raises(PermanentError, match="no FAXAGE recvid"):
        adapter.download("../1001", tmp_path / "g.part", max_bytes=None)
    assert inbox.count("getfax") == 1


def test_a_refused_login_names_the_faxage_login_to_check(inbox: FakeInbox, tmp_path: Path) -> None:
    """ERR02 says only "login incorrect"; the adapter says whose login and what to check."""
    config = make_config(tmp_path, ())
    inbox.fail["listfax"] = [AuthError("ERR02: Login incorrect", operation="listfax")]
    adapter = make_inbound(config, client=inbox)
    with pytest.raises(AuthError) as refused:
        list(adapter.list_new(None, now=NOW))
    message = refused.value.message
    assert "FAXAGE refused the login for user acme company 12345" in message
    assert "ERR02" in message and "password" in message
