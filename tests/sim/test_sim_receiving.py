"""listfax, getfax and delfax as the FAXAGE documents describe them, over real HTTP."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from simapi import Api

from faxd.sim import FaxageSimulator, SimFax

RECORD_FULL = re.compile(
    r"\A\d+\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\t"
    r"(\(\d{3}\)\d{3}-\d{4}|Unavailable)\t\(\d{3}\)\d{3}-\d{4}\tfax\d+\.pdf\t\d+\Z"
)


def records(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def test_wrong_password_is_err02(sim: FaxageSimulator, api: Api) -> None:
    """A wrong password gets the documented login error, with HTTP 200."""
    sim.seed_inbound(1)
    pairs = [("username", sim.username), ("company", sim.company), ("password", "nope")]
    response = api.raw("/httpsfax.php", [*pairs, ("operation", "listfax")])
    assert (response.status_code, response.text) == (200, "ERR02: Login incorrect")


def test_wrong_company_is_err02(sim: FaxageSimulator, api: Api) -> None:
    """Username, company and password must all match."""
    pairs = [("username", sim.username), ("company", "99999"), ("password", sim.password)]
    assert api.raw("/httpsfax.php", [*pairs, ("operation", "listfax")]).text == (
        "ERR02: Login incorrect"
    )


def test_unknown_operation_echoes_whole_post(sim: FaxageSimulator, api: Api) -> None:
    """ERR08 echoes the POST back in print_r form, password included, like the real service."""
    text = api.text("frobnicate", ("faxfilenames[]", "a.pdf"))
    assert text.startswith("ERR08: Unknown operation specified or bad POST Array\n(\n")
    assert f"    [password] => {sim.password}\n" in text
    assert "    [operation] => frobnicate\n" in text
    assert "    [faxfilenames] => Array\n        (\n            [0] => a.pdf\n        )\n" in text


def test_listfax_empty_is_err11(api: Api) -> None:
    """An empty inbox answers ERR11."""
    assert api.text("listfax") == "ERR11: No incoming faxes available"


def test_listfax_full_layout(sim: FaxageSimulator, api: Api) -> None:
    """With starttime, filename and pagecount every record has the seven documented columns."""
    sim.seed_inbound(4)
    text = api.text("listfax", starttime="1", filename="1", pagecount="1", idasc="1")
    lines = text.splitlines()
    assert len(lines) == 4 and text.endswith("\n")
    assert all(RECORD_FULL.match(line) for line in lines), lines
    first = lines[0].split("\t")
    fax = sim.faxes[int(first[0])]
    assert first == [
        str(fax.recvid),
        fax.recvdate.strftime("%Y-%m-%d %H:%M:%S"),
        fax.starttime.strftime("%Y-%m-%d %H:%M:%S"),
        "(303)555-0100",
        "(303)555-0101",
        f"fax{fax.recvid}.pdf",
        str(fax.pagecount),
    ]


def test_listfax_minimal_layout(sim: FaxageSimulator, api: Api) -> None:
    """Without the column flags a record is recvid, recvdate, CID, DNIS."""
    sim.add_fax("3035550102", "Unavailable")
    (record,) = records(api.text("listfax"))
    assert record[2:] == ["Unavailable", "(303)555-0102"]
    assert len(record) == 4


def test_listfax_extra_columns_follow_the_documented_ones(
    sim: FaxageSimulator, api: Api
) -> None:
    """extra_columns appends that many columns after pagecount, as a newer FAXAGE would."""
    sim.extra_columns = 1
    fax = sim.add_fax("3035550102", pagecount=2)
    (record,) = records(api.text("listfax", starttime="1", filename="1", pagecount="1"))
    assert record[5:] == [fax.filename, "2", "extra1"]


def test_listfax_starttime_only_and_pagecount_only(sim: FaxageSimulator, api: Api) -> None:
    """Each optional column appears only when its flag is sent, in the documented place."""
    fax = sim.add_fax("3035550101", pagecount=3)
    (with_start,) = records(api.text("listfax", starttime="1"))
    assert with_start[2] == fax.starttime.strftime("%Y-%m-%d %H:%M:%S") and len(with_start) == 5
    (with_pages,) = records(api.text("listfax", pagecount="1"))
    assert with_pages[-1] == "3" and len(with_pages) == 5


def test_seed_recvids_start_realistic_and_increase(sim: FaxageSimulator) -> None:
    """Seeded recvids start at a realistic number and go up by one."""
    faxes = sim.seed_inbound(3)
    assert [f.recvid for f in faxes] == [104729, 104730, 104731]
    assert [f.dnis for f in faxes] == ["3035550101", "3035550102", "3035550103"]


def test_listfax_default_order_is_dnis_then_newest(sim: FaxageSimulator, api: Api) -> None:
    """Without idasc faxes are grouped by DNIS, newest first within each number."""
    sim.add_fax("3035550102", recvdate=datetime(2024, 1, 1, 9, 0))
    sim.add_fax("3035550101", recvdate=datetime(2024, 1, 1, 8, 0))
    sim.add_fax("3035550102", recvdate=datetime(2024, 1, 1, 10, 0))
    sim.add_fax("3035550101", recvdate=datetime(2024, 1, 1, 11, 0))
    order = [int(r[0]) for r in records(api.text("listfax"))]
    assert order == [104732, 104730, 104731, 104729]


def test_listfax_idasc_orders_by_recvid(sim: FaxageSimulator, api: Api) -> None:
    """idasc=1 lists oldest to newest by recvid."""
    sim.seed_inbound(5)
    order = [int(r[0]) for r in records(api.text("listfax", idasc="1"))]
    assert order == sorted(order) and len(order) == 5


def test_listfax_idgt_lists_only_newer(sim: FaxageSimulator, api: Api) -> None:
    """idgt lists only recvids greater than the one given; nothing newer is ERR11."""
    sim.seed_inbound(5)
    order = [int(r[0]) for r in records(api.text("listfax", idasc="1", idgt="104731"))]
    assert order == [104732, 104733]
    assert api.text("listfax", idgt="104733") == "ERR11: No incoming faxes available"


def test_listfax_begin_and_didnumber_filter(sim: FaxageSimulator, api: Api) -> None:
    """begin keeps faxes received after it; didnumber keeps one DNIS."""
    sim.add_fax("3035550101", recvdate=datetime(2024, 1, 1, 8, 0))
    sim.add_fax("3035550102", recvdate=datetime(2024, 1, 2, 8, 0))
    sim.add_fax("3035550101", recvdate=datetime(2024, 1, 3, 8, 0))
    after = [int(r[0]) for r in records(api.text("listfax", begin="2024-01-01 12:00:00"))]
    assert sorted(after) == [104730, 104731]
    only = [int(r[0]) for r in records(api.text("listfax", didnumber="3035550101"))]
    assert only == [104731, 104729]


def test_listfax_accepts_useronly(sim: FaxageSimulator, api: Api) -> None:
    """useronly is accepted (every fax belongs to the one user)."""
    sim.seed_inbound(2)
    assert len(records(api.text("listfax", useronly="1"))) == 2


def test_getfax_serves_attachment(sim: FaxageSimulator, api: Api) -> None:
    """getfax answers the file with the documented headers."""
    (fax,) = sim.seed_inbound(1)
    response = api.call("getfax", faxid=str(fax.recvid))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == f'attachment; filename="fax{fax.recvid}.pdf"'
    assert response.headers["Content-Length"] == str(len(fax.data))
    assert response.content == fax.data
    assert response.content.startswith(b"%PDF-") and f"Fax {fax.recvid}".encode() in fax.data


def test_seeded_faxes_are_unique(sim: FaxageSimulator) -> None:
    """Every seeded fax has different bytes."""
    faxes = sim.seed_inbound(6)
    assert len({f.data for f in faxes}) == 6


def test_seed_tiff_and_size(sim: FaxageSimulator, api: Api) -> None:
    """kind='tiff' serves TIFFs named .tif; size pads a file to about that size."""
    (tiff,) = sim.seed_inbound(1, kind="tiff", size=20_000)
    assert tiff.data.startswith(b"II*\x00") and tiff.filename.endswith(".tif")
    assert 20_000 <= len(tiff.data) < 21_000
    (pdf,) = sim.seed_inbound(1, size=50_000)
    assert 49_000 <= len(pdf.data) <= 51_000
    response = api.call("getfax", faxid=str(tiff.recvid))
    assert 'filename="fax104729.tif"' in response.headers["Content-Disposition"]


def test_getfax_streams_from_data_path(sim: FaxageSimulator, api: Api, tmp_path: Path) -> None:
    """A fax added with data_path is served from disk, byte for byte, with its full length."""
    big = tmp_path / "big.pdf"
    payload = b"%PDF-1.4\n" + bytes(range(256)) * 12_000
    big.write_bytes(payload)
    fax = sim.add_fax("3035550101", data_path=big, pagecount=40)
    assert fax.data == b""
    response = api.call("getfax", faxid=str(fax.recvid))
    assert int(response.headers["Content-Length"]) == len(payload)
    assert response.content == payload


def test_getfax_unknown_is_err12(api: Api) -> None:
    """An unknown faxid gets ERR12 naming it."""
    assert api.text("getfax", faxid="555") == (
        "ERR12: FAX ID 555 not found or does not belong to you"
    )


def test_delfax_then_gone_everywhere(sim: FaxageSimulator, api: Api) -> None:
    """delfax answers '<faxid> Deleted'; the fax leaves listfax and getfax; again is ERR14."""
    first, second = sim.seed_inbound(2)
    assert api.text("delfax", faxid=str(first.recvid)) == f"{first.recvid} Deleted"
    assert first.deleted and first.deleted_at is not None
    listed = [int(r[0]) for r in records(api.text("listfax"))]
    assert listed == [second.recvid]
    assert api.text("getfax", faxid=str(first.recvid)).startswith("ERR12: ")
    assert api.text("delfax", faxid=str(first.recvid)) == (
        f"ERR14: FAX ID {first.recvid} not found or does not belong to you"
    )


def test_delete_check_records_violation_and_still_deletes(sim: FaxageSimulator, api: Api) -> None:
    """A delete_check message becomes a violation; the delete still happens."""
    seen: list[int] = []

    def check(fax: SimFax) -> str | None:
        seen.append(fax.recvid)
        return f"deleted {fax.recvid} before delivery" if fax.recvid % 2 else None

    sim.delete_check = check
    odd, even = sim.seed_inbound(2)  # 104729 is odd
    api.text("delfax", faxid=str(odd.recvid))
    api.text("delfax", faxid=str(even.recvid))
    assert seen == [odd.recvid, even.recvid]
    assert sim.violations == [f"deleted {odd.recvid} before delivery"]
    assert odd.deleted and even.deleted


def test_delete_check_exception_is_a_violation(sim: FaxageSimulator, api: Api) -> None:
    """A delete_check that raises is reported as a violation, not a server crash."""

    def check(fax: SimFax) -> str | None:
        raise RuntimeError("db locked")

    sim.delete_check = check
    (fax,) = sim.seed_inbound(1)
    assert api.text("delfax", faxid=str(fax.recvid)) == f"{fax.recvid} Deleted"
    assert sim.violations == ["delete_check raised RuntimeError: db locked"]


def test_hostile_cid_and_filename_served_as_given(sim: FaxageSimulator, api: Api) -> None:
    """add_fax can serve odd caller ids and file names for the client's sanitising tests."""
    fax = sim.add_fax("3035550101", "+44 20 7946 0958", filename="../../etc/passwd.pdf")
    (record,) = records(api.text("listfax", filename="1"))
    assert record[2:] == ["+44 20 7946 0958", "(303)555-0101", "../../etc/passwd.pdf"]
    disposition = api.call("getfax", faxid=str(fax.recvid)).headers["Content-Disposition"]
    assert disposition == 'attachment; filename="../../etc/passwd.pdf"'


def test_requests_log_has_no_password(sim: FaxageSimulator, api: Api) -> None:
    """Every request is logged with its fields but never the password."""
    api.text("listfax", idgt="5")
    (request,) = sim.requests
    assert request.operation == "listfax" and request.path == "/httpsfax.php"
    assert request.fields["idgt"] == "5"
    assert "password" not in request.fields
    assert sim.password not in repr(sim.requests)
