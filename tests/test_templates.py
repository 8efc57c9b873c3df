"""Tests for faxd.templates: checking templates and rendering safe paths and texts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePosixPath

import pytest

from faxd.templates import (
    TEMPLATE_FIELDS,
    one_line,
    render_path,
    render_text,
    safe_component,
    template_problems,
)

RECEIVED = datetime(2024, 3, 5, 14, 7, 9)


def fields(**override: object) -> dict[str, object]:
    base: dict[str, object] = {
        "recvid": 9001,
        "dnis": "3035550101",
        "cid": "3035550100",
        "pages": 2,
        "ext": "pdf",
        "route": "sales",
        "received": RECEIVED,
    }
    base.update(override)
    return base


def test_fields_are_the_documented_ones() -> None:
    """The template fields are exactly those DESIGN.md lists."""
    assert set(TEMPLATE_FIELDS) == {
        "recvid", "dnis", "cid", "pages", "ext", "route", "received", "provider",
        "dnis_e164", "cid_e164",
    }  # fmt: skip


def test_render_path_with_received_spec() -> None:
    """Fields fill in, {received:...} takes a strftime spec, literal slashes stay."""
    path = render_path("/srv/fax/{route}/{received:%Y-%m}/{recvid}-{pages:03d}.{ext}", fields())
    assert path == "/srv/fax/sales/2024-03/9001-002.pdf"


def test_a_spec_that_does_not_fit_the_value_falls_back_to_the_plain_value() -> None:
    """{pages:03d} with pages "unknown" (no page count) still renders, unformatted."""
    assert render_path("/f/{recvid}-{pages:03d}.pdf", fields(pages="unknown")) == (
        "/f/9001-unknown.pdf"
    )


def test_plain_received_has_safe_defaults() -> None:
    """{received} alone is sortable with no colon in paths, readable in texts."""
    assert render_path("{received}", fields()) == "2024-03-05 140709"
    assert render_text("{received}", fields()) == "2024-03-05 14:07:09"


def test_aware_received_is_shown_in_local_time() -> None:
    """An aware received time renders as the server's local wall clock."""
    aware = datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)
    expected = aware.astimezone().strftime("%Y-%m-%d %H")
    assert render_text("{received:%Y-%m-%d %H}", fields(received=aware)) == expected


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd", "..", "/", "a/../../b", "..\\..\\win", "x\0y", "-rf", ".hidden", " "],
)
def test_hostile_values_cannot_escape_the_folder(hostile: str) -> None:
    """Whatever a value holds, it stays one harmless component inside the template's folder."""
    path = render_path("/srv/fax/{cid}/{recvid}.pdf", fields(cid=hostile))
    parts = PurePosixPath(path).parts
    assert parts[:3] == ("/", "srv", "fax") and parts[-1] == "9001.pdf"
    assert len(parts) == 5
    component = parts[3]
    assert ".." not in component and "\0" not in component and "\\" not in component
    assert not component.startswith((".", "-", " "))


def test_examples_of_sanitised_values() -> None:
    """Known hostile values map to known safe components."""
    assert safe_component("../../etc/passwd") == "_._etc_passwd"
    assert safe_component("a\x00b\x1fc\x7f") == "abc"
    assert safe_component("") == "unknown"
    assert safe_component("...") == "unknown"
    assert safe_component("--help") == "help"
    # iFax's "jobId:transactionId" and other names a Windows client or SMB share refuses
    assert safe_component("70000001:490000010") == "70000001_490000010"
    assert safe_component('a<b>c"d|e?f*g') == "a_b_c_d_e_f_g"


def test_long_values_are_cut_to_100_characters() -> None:
    """A 300-character caller id becomes at most 100 characters of the path."""
    path = render_path("/srv/{cid}.pdf", fields(cid="9" * 300))
    assert path == "/srv/" + "9" * 100 + ".pdf"


def test_empty_value_becomes_unknown_in_paths_only() -> None:
    """An empty caller id is "unknown" in a path and stays empty in a text."""
    assert render_path("/in/{cid}/{recvid}", fields(cid="")) == "/in/unknown/9001"
    assert render_text("from [{cid}]", fields(cid="")) == "from []"


def test_dotdot_in_the_template_itself_is_refused() -> None:
    """A literal '..' component is a template problem and render_path refuses it."""
    assert template_problems("/srv/../etc/{recvid}", path=True) == [
        "a path template must not contain a '..' component"
    ]
    assert template_problems("/srv/{cid}..{ext}", path=True) == []
    assert template_problems("/srv/\0/{recvid}", path=True) == [
        "a path template must not contain a NUL character"
    ]
    with pytest.raises(ValueError, match=r"'\.\.' component"):
        render_path("/srv/../etc/{recvid}", fields())


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{recvd}.pdf", "unknown field {recvd}; known: {recvid} {dnis} {cid} {pages}"),
        ("{recvd}", "did you mean {recvid}?"),
        ("{0}", "positional field {0} is not allowed"),
        ("{}", "positional field {} is not allowed"),
        ("{cid.__class__}", "attribute and index access are not allowed"),
        ("{cid[0]}", "attribute and index access are not allowed"),
        ("{cid!r}", "conversions"),
        ("{pages:{recvid}}", "nested fields"),
        ("{dnis:d}", "bad format spec"),
        ("{recvid", "bad template syntax"),
        ("}", "bad template syntax"),
    ],
)
def test_template_problems(template: str, fragment: str) -> None:
    """Each kind of bad template is refused with a message naming the problem."""
    found = template_problems(template)
    assert len(found) == 1 and fragment in found[0], found


def test_good_templates_have_no_problems() -> None:
    """Every field, strftime specs and doubled braces are fine."""
    template = "{{literal}} {recvid} {dnis} {cid} {pages:>3} {ext} {route} {received:%A %H:%M}"
    assert template_problems(template) == []
    assert render_text(template, fields()).startswith("{literal} 9001 3035550101")


def test_render_refuses_bad_templates_and_missing_fields() -> None:
    """Rendering an unchecked bad template or with a field missing raises ValueError."""
    with pytest.raises(ValueError, match="attribute and index access"):
        render_text("{cid.__class__.__init__}", fields())
    values = fields()
    del values["pages"]
    with pytest.raises(ValueError, match="no value was given"):
        render_text("{pages}", values)


def test_render_text_keeps_newlines_and_one_line_removes_them() -> None:
    """Bodies keep line breaks; one_line folds a subject onto a single line."""
    body = render_text("From {cid}\nPages {pages}", fields(cid="a\r\nBcc: x@evil"))
    assert body == "From a\nBcc: x@evil\nPages 2"  # \r is a control character: dropped
    assert one_line(render_text("Fax from {cid}", fields(cid="a\r\nBcc: x@evil"))) == (
        "Fax from a Bcc: x@evil"
    )


def test_invisible_format_characters_are_removed_from_path_values() -> None:
    """Bidi overrides, zero-width and line/paragraph separators cannot hide in a file name."""
    assert safe_component("12\u202efdp.exe") == "12fdp.exe"
    assert safe_component("a\u200bb\u2028c\u2029d\ufeff") == "abcd"
