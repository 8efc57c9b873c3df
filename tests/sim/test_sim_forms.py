"""PHP-style form decoding and the print_r echo of ERR08."""

from __future__ import annotations

from faxd.sim.forms import Form


def test_repeated_and_indexed_arrays() -> None:
    """name[] appends, name[n] sets an index, and arrays come back in index order."""
    form = Form([("a[]", "x"), ("a[]", "y"), ("b[1]", "second"), ("b[0]", "first")])
    assert form.array("a") == ["x", "y"]
    assert form.array("b") == ["first", "second"]
    assert form.has_array("a") and not form.has_array("c")
    assert form.array("c") == []


def test_mixed_index_then_append() -> None:
    """name[] after name[3] continues at 4, as PHP does."""
    form = Form([("a[3]", "x"), ("a[]", "y")])
    assert form.array("a") == ["x", "y"]
    assert "[3] => x" in form.print_r() and "[4] => y" in form.print_r()


def test_scalars_last_wins_and_flags() -> None:
    """A repeated scalar keeps its last value; flags are set unless empty or 0."""
    form = Form([("x", "1"), ("x", "2"), ("f", "1"), ("g", "0"), ("h", "")])
    assert form.get("x") == "2" and form.get("missing") is None
    assert form.flag("f") and not form.flag("g") and not form.flag("h")
    assert not form.flag("missing")


def test_parse_urlencoded_body() -> None:
    """A url-encoded body decodes, blank values included."""
    form = Form.parse(b"username=a%20b&faxfilenames%5B%5D=x.pdf&empty=")
    assert form.get("username") == "a b"
    assert form.array("faxfilenames") == ["x.pdf"]
    assert form.get("empty") == ""


def test_logged_fields_drop_password() -> None:
    """The request log keeps every field but the password."""
    form = Form([("username", "u"), ("password", "p"), ("jobids[]", "1")])
    assert form.logged_fields() == {"username": "u", "jobids": ["1"]}


def test_print_r_layout() -> None:
    """print_r output matches PHP's layout, nested arrays included."""
    form = Form([("username", "u"), ("password", "p"), ("f[]", "a.pdf")])
    assert form.print_r() == (
        "Array\n(\n    [username] => u\n    [password] => p\n"
        "    [f] => Array\n        (\n            [0] => a.pdf\n        )\n\n)\n"
    )
