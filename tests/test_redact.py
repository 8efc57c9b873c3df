"""Secrets are masked in every form a provider answer or a message can carry them."""

from __future__ import annotations

import html
from urllib.parse import quote, quote_plus

import pytest

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


@pytest.mark.parametrize("secret", ["x", "q7", "k#9"])
def test_a_short_password_is_redacted_too(secret: str) -> None:
    """Issue 10 #8: a 1-3 character password was never hidden; now it is, as a token."""
    register_secret(secret)
    echoed = f"ERR08: username=acme&pw={quote_plus(secret)}&faxno=3035551212 [{secret}]"
    assert redact(echoed) == f"ERR08: username=acme&pw={MASK}&faxno=3035551212 [{MASK}]"


def test_a_short_password_does_not_mask_every_letter() -> None:
    """A password "a" must not eat the a's of ordinary words; only the token "a" goes."""
    register_secret("a")
    assert redact("a fax arrived from a caller") == f"{MASK} fax arrived from {MASK} caller"


@pytest.mark.parametrize(
    "text",
    [
        # VoIP.ms: every GET carries api_password in its query string.
        "GET https://voip.ms/api/v1/rest.php?api_username=a%40b.c&api_password=Vq-8zz&method=x",
        "HTTPSConnectionPool(host='voip.ms'): url: /api/v1/rest.php?api_password=Vq-8zz&method=y",
        # iFax: the accessToken header, as a dict of headers and in a JSON body.
        "{'Content-Type': 'application/json', 'accessToken': 'Vq-8zz'}",
        '{"accessToken": "Vq-8zz", "faxNumber": "+13035550101"}',
        "accessToken: Vq-8zz",
        "access_token=Vq-8zz",
        # faxnummer.de: sProductCode as a form field, a PHP dump, a multipart part.
        "sCommand=SendFax&sProductLogin=acc1&sProductCode=Vq-8zz&sDestination=0049",
        "[sProductCode] => Vq-8zz\n",
        'Content-Disposition: form-data; name="sProductCode"\r\n\r\nVq-8zz\r\n--b--',
    ],
)
def test_provider_secret_fields_are_masked_even_when_not_registered(text: str) -> None:
    """Issue 11: each provider's own name for its secret hides the value, whatever it is."""
    out = redact(text)
    assert "Vq-8zz" not in out and MASK in out
    assert "Vq" not in out  # no part of it left beside the mask


def test_provider_secret_fields_leave_other_fields_alone() -> None:
    """Only the secret's value goes: the method, login and number stay readable."""
    out = redact("rest.php?api_username=office&api_password=Vq-8zz&method=getFaxMessages")
    assert out == f"rest.php?api_username=office&api_password={MASK}&method=getFaxMessages"
    out = redact('{"accessToken": "Vq-8zz", "faxNumber": "+13035550101"}')
    assert out == f'{{"accessToken": "{MASK}", "faxNumber": "+13035550101"}}'
