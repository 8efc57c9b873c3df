"""Secrets are masked in every form a provider answer or a message can carry them."""

from __future__ import annotations

import html
from urllib.parse import quote, quote_plus

from faxd.redact import MASK, redact, register_secret, summarize_body

SECRET = "p&ss<w>rd+ 9/x"


def test_every_encoded_form_of_a_registered_secret_is_masked() -> None:
    """Plain, URL-encoded (both ways) and HTML-escaped forms all disappear."""
    register_secret(SECRET)
    for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), html.escape(SECRET)):
        assert form not in redact(f"echo: [{form}] end"), form
        assert MASK in redact(f"echo: [{form}] end")


def test_labelled_passwords_are_masked_even_when_not_registered() -> None:
    """An echoed POST field password=... is masked whatever its value."""
    assert "hunter22" not in redact("username=acme&password=hunter22&operation=x")
    assert "hunter22" not in redact("[password] => hunter22\n")


def test_summarize_body_redacts_before_it_cuts() -> None:
    """A secret that straddles the truncation point leaves no prefix behind."""
    register_secret("ABCDEFGHIJKLMNOP-secret")
    # Whitespace collapses, so a secret far into the body still lands in the summary.
    body = ("ERR08: " + " " * 785 + "ABCDEFGHIJKLMNOP-secret " + "y" * 2000).encode()
    out = summarize_body(body, limit=200)
    assert "ABCDEFG" not in out
    assert MASK in out
    assert out.endswith(f"({len(body)} bytes in all)")


def test_summarize_body_makes_binary_printable_and_short() -> None:
    """Control bytes become spaces and the result is bounded."""
    out = summarize_body(b"ERR08: bad\x00\x01\npost" + b"z" * 5000, limit=50)
    assert "\x00" not in out and "\n" not in out
    assert len(out) < 100
