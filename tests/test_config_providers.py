"""Tests for the provider sections: [voipms], [ifax], [faxnummer], and which provider does what.

Each provider's section is parsed into its settings with every documented
check, its secret comes from any of the four sources (recording where from),
[faxage] is optional, and [inbound] providers / [outbound] provider are checked
against what is configured and what each provider can do.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from faxd.check_config import render_config
from faxd.config import Config, load_config
from faxd.config.providers import FAXNUMMER_CANNOT_RECEIVE
from faxd.errors import ConfigError
from faxd.redact import MASK, redact

VOIPMS_PW = "vo1p-API-pw-Zq93"
IFAX_TOKEN = "ifax-TOKEN-7c1e55aa"
FXN_CODE = "fxn-CODE-Kd82"
FAXAGE_PW = "faxage-PW-Lm47"

ENV = {
    "FAXD_FAXAGE_PASSWORD": FAXAGE_PW,
    "FAXD_VOIPMS_PASSWORD": VOIPMS_PW,
    "FAXD_IFAX_TOKEN": IFAX_TOKEN,
    "FAXD_FAXNUMMER_CODE": FXN_CODE,
}
FAXAGE = '[faxage]\nusername = "acme"\ncompany = "12345"\n'
VOIPMS = '[voipms]\nusername = "office@example.com"\n'
IFAX = "[ifax]\n"
FAXNUMMER = '[faxnummer]\nproduct_login = "acc12345"\nstatus_email = "fax@acme.example"\n'
ROUTE = """
[[routes]]
name = "default"
actions = [{ type = "folder", path = "/srv/fax/{recvid}.{ext}" }]
"""
OUTBOX = """
[outbound]
hot_folder = "/srv/fax/outbox"
sent_folder = "/srv/fax/sent"
failed_folder = "/srv/fax/failed"
"""


def write(tmp_path: Path, text: str, *, mode: int = 0o600) -> Path:
    path = tmp_path / "faxd.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env=ENV if env is None else env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return caught.value.problems


def only(found: list[str], fragment: str) -> str:
    matching = [p for p in found if fragment in p]
    assert len(matching) == 1, found
    return matching[0]


# -- [voipms] ------------------------------------------------------------------------------


def test_voipms_section_parsed_with_defaults(tmp_path: Path) -> None:
    """A minimal [voipms] gets DESIGN's defaults; a full one keeps every value."""
    config = load(tmp_path, VOIPMS + ROUTE)
    voipms = config.voipms
    assert voipms is not None and config.faxage is None
    assert (voipms.username, voipms.password) == ("office@example.com", VOIPMS_PW)
    assert voipms.password_source == "environment variable FAXD_VOIPMS_PASSWORD"
    assert (voipms.folder, voipms.timezone, voipms.after_delivery) == (
        "INBOX", "America/New_York", "delete"
    )  # fmt: skip
    assert voipms.base_url == "https://voip.ms/api/v1/rest.php" and voipms.since is None

    full = VOIPMS + (
        'base_url = "http://127.0.0.1:8999/api/v1/rest.php"\nfolder = "FAXES"\n'
        'timezone = "America/Denver"\nafter_delivery = "move"\narchive_folder = "DONE"\n'
        'from_number = "(555) 234-1234"\nfrom_name = "Acme Corp"\nsince = 2026-01-31\n'
        "timeout = 20\n"
    )
    voipms = load(tmp_path, full + ROUTE).voipms
    assert voipms is not None
    assert voipms.base_url == "http://127.0.0.1:8999/api/v1/rest.php"
    assert (voipms.folder, voipms.timezone) == ("FAXES", "America/Denver")
    assert (voipms.after_delivery, voipms.archive_folder) == ("move", "DONE")
    assert (voipms.from_number, voipms.from_name) == ("5552341234", "Acme Corp")
    assert voipms.since == date(2026, 1, 31) and voipms.timeout == 20.0


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        ('after_delivery = "archive"\n', "after_delivery", "not one of delete | move | keep"),
        ('after_delivery = "move"\n', "archive_folder", "missing; after_delivery = \"move\""),
        ('after_delivery = "move"\narchive_folder = "inbox"\n', "archive_folder", "takes faxes"),
        ('timezone = "Mars/Olympus"\n', "timezone", "not a time zone name"),
        ('timezone = "../../etc/passwd"\n', "timezone", "not a time zone name"),
        ('since = "31.01.2026"\n', "since", "write it as YYYY-MM-DD"),
        ('since = "2026-02-30"\n', "since", "write it as YYYY-MM-DD"),
        ("since = 2026-01-31T10:00:00\n", "since", "write it as YYYY-MM-DD"),
        ('base_url = "ftp://voip.ms/api"\n', "base_url", "must start with https://"),
        ('base_url = "http://voip.ms/api/v1/rest.php"\n', "base_url", "plain http"),
        ('from_number = "12345"\n', "from_number", "10 digits"),
        ('folde = "INBOX"\n', "folde", "unknown key; did you mean folder?"),
    ],
)
def test_voipms_mistakes_are_named(tmp_path: Path, extra: str, key: str, fragment: str) -> None:
    """Each wrong [voipms] value is one problem naming the key and what to write."""
    message = only(problems(tmp_path, VOIPMS + extra + ROUTE), f"[voipms] {key}")
    assert fragment in message


def test_voipms_username_required(tmp_path: Path) -> None:
    message = only(problems(tmp_path, "[voipms]\n" + ROUTE), "[voipms] username")
    assert "missing" in message and "api_username" in message


# -- [ifax] and [faxnummer] ------------------------------------------------------------------


def test_ifax_section_parsed(tmp_path: Path) -> None:
    """quality is read case-insensitively and stored as iFax spells it; caller_id as given."""
    text = IFAX + 'caller_id = "+1 303 555 0100"\nquality = "hd"\nsince = "2026-03-01"\n'
    ifax = load(tmp_path, text + ROUTE).ifax
    assert ifax is not None
    assert (ifax.access_token, ifax.token_source) == (
        IFAX_TOKEN, "environment variable FAXD_IFAX_TOKEN"
    )  # fmt: skip
    assert (ifax.caller_id, ifax.quality, ifax.since) == (
        "+1 303 555 0100", "HD", date(2026, 3, 1)
    )  # fmt: skip
    assert IFAX_TOKEN not in repr(ifax)


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        ('quality = "Ultra"\n', "quality", "not one of low | standard | hd"),
        ('caller_id = "call me"\n', "caller_id", "not a phone number"),
        ('base_url = "http://api.ifaxapp.com/v1"\n', "base_url", "send the access token"),
        ('token_path = "x"\n', "token_path", "unknown key"),
    ],
)
def test_ifax_mistakes_are_named(tmp_path: Path, extra: str, key: str, fragment: str) -> None:
    assert fragment in only(problems(tmp_path, IFAX + extra + ROUTE), f"[ifax] {key}")


def test_faxnummer_section_parsed(tmp_path: Path) -> None:
    text = FAXNUMMER + 'source = "+49 30 1234567"\nsender = "Acme GmbH ~ Fax 1234"\n'
    faxnummer = load(tmp_path, FAXAGE + text + ROUTE).faxnummer
    assert faxnummer is not None
    assert (faxnummer.product_login, faxnummer.product_code) == ("acc12345", FXN_CODE)
    assert faxnummer.code_source == "environment variable FAXD_FAXNUMMER_CODE"
    assert (faxnummer.source, faxnummer.sender) == ("+49 30 1234567", "Acme GmbH ~ Fax 1234")
    assert faxnummer.status_email == "fax@acme.example"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (FAXNUMMER + 'sender = "Acme GmbH Faxabteilung 1"\n', "sender", "at most 20 printable"),
        (FAXNUMMER + 'sender = "Müller GmbH"\n', "sender", "printable ASCII"),
        (FAXNUMMER + 'sender = "Acme\\tGmbH"\n', "sender", "printable ASCII"),
        ('[faxnummer]\nproduct_login = "acc1"\n', "status_email", "missing"),
        (FAXNUMMER.replace("fax@acme.example", "fax at acme"), "status_email", "not one email"),
        ('[faxnummer]\nstatus_email = "f@x.de"\n', "product_login", "customer-centre"),
        (FAXNUMMER + 'source = "030/12 34 56 78 90 12 34"\n', "source", "not a phone number"),
    ],
)
def test_faxnummer_mistakes_are_named(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    assert fragment in only(problems(tmp_path, FAXAGE + text + ROUTE), f"[faxnummer] {key}")


# -- secrets: the four sources, where they came from, warnings --------------------------------

SECRETS = [
    (VOIPMS, "voipms", "password", "FAXD_VOIPMS_PASSWORD", "voipms-password", VOIPMS_PW),
    (IFAX, "ifax", "access_token", "FAXD_IFAX_TOKEN", "ifax-token", IFAX_TOKEN),
    (FAXNUMMER, "faxnummer", "product_code", "FAXD_FAXNUMMER_CODE", "faxnummer-code", FXN_CODE),
]


def _secret_of(config: Config, name: str) -> tuple[str, str]:
    settings = config.provider(name)
    assert settings is not None
    value = {"voipms": "password", "ifax": "access_token", "faxnummer": "product_code"}[name]
    source = {"voipms": "password_source", "ifax": "token_source", "faxnummer": "code_source"}
    return getattr(settings, value), getattr(settings, source[name])


@pytest.mark.parametrize(("section", "name", "key", "env_var", "credential", "value"), SECRETS)
def test_provider_secret_sources(
    tmp_path: Path, section: str, name: str, key: str, env_var: str, credential: str, value: str
) -> None:
    """Inline (with a warning), *_file, environment and systemd credential, in that order."""
    base = FAXAGE + section
    env = {"FAXD_FAXAGE_PASSWORD": FAXAGE_PW}

    inline = load(tmp_path, base + f'{key} = "{value}-inline"\n' + ROUTE, env)
    path = tmp_path / "faxd.toml"
    assert _secret_of(inline, name) == (f"{value}-inline", f"{key} in {path}")
    assert only(list(inline.warnings), f"[{name}] {key}").endswith(
        f"move it to {key}_file (chmod 600) so the config can be shown without it"
    )
    assert f"{value}-inline" not in " ".join(inline.warnings)

    secret_file = tmp_path / f"{name}.secret"
    secret_file.write_text(f"{value}-file\n")
    secret_file.chmod(0o600)
    from_file = load(tmp_path, base + f'{key}_file = "{secret_file.name}"\n' + ROUTE, env)
    assert _secret_of(from_file, name) == (f"{value}-file", f"{key}_file {secret_file}")
    assert from_file.warnings == ()

    from_env = load(tmp_path, base + ROUTE, {**env, env_var: f"{value}-env"})
    assert _secret_of(from_env, name) == (f"{value}-env", f"environment variable {env_var}")

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / credential).write_text(f"{value}-cred\n")
    from_cred = load(tmp_path, base + ROUTE, {**env, "CREDENTIALS_DIRECTORY": str(creds)})
    assert _secret_of(from_cred, name) == (f"{value}-cred", f"systemd credential {credential}")
    assert redact(f"got {value}-cred back") == f"got {MASK} back"

    message = only(problems(tmp_path, base + ROUTE, env), f"[{name}]")
    for way in (f"{key}_file", env_var, f"LoadCredential={credential}"):
        assert way in message


def test_provider_secret_file_must_be_private(tmp_path: Path) -> None:
    """A world-readable *_file is refused with the chmod that fixes it, as for FAXAGE."""
    token = tmp_path / "ifax-token"
    token.write_text(IFAX_TOKEN)
    token.chmod(0o644)
    found = problems(tmp_path, IFAX + 'access_token_file = "ifax-token"\n' + ROUTE, {})
    assert f"chmod 600 {token}" in only(found, "[ifax] access_token_file")
    assert IFAX_TOKEN not in " ".join(found)


# -- which providers: none, [inbound] providers, [outbound] provider ---------------------------


def test_no_provider_section_names_all_four(tmp_path: Path) -> None:
    message = only(problems(tmp_path, ROUTE), "no provider section")
    for section in ("[faxage]", "[voipms]", "[ifax]", "[faxnummer]"):
        assert section in message


def test_inbound_providers_default_to_every_receiving_one(tmp_path: Path) -> None:
    """Default: the configured providers that can receive, faxnummer.de left out."""
    config = load(tmp_path, IFAX + FAXNUMMER + VOIPMS + FAXAGE + ROUTE + OUTBOX
                  + '\nprovider = "faxnummer"\n')  # fmt: skip
    assert config.inbound_providers == ("faxage", "voipms", "ifax")
    assert config.outbound_provider == "faxnummer"


def test_inbound_providers_named(tmp_path: Path) -> None:
    text = FAXAGE + VOIPMS + IFAX + ROUTE + '[inbound]\nproviders = ["voipms", "faxage"]\n'
    assert load(tmp_path, text).inbound_providers == ("voipms", "faxage")


@pytest.mark.parametrize(
    ("providers", "fragment"),
    [
        ('["faxage", "faxnummer"]', f"cannot name faxnummer: {FAXNUMMER_CANNOT_RECEIVE}"),
        ('["faxnummer"]', FAXNUMMER_CANNOT_RECEIVE),
        ('["faxage", "ifax"]', "'ifax' is not configured; add a [ifax] section"),
        ('["faxage", "voip"]', "'voip' is not a provider; faxd knows faxage, voipms, ifax"),
        ('["faxage", "faxage"]', "names 'faxage' twice"),
        ("[]", "is empty"),
    ],
)
def test_inbound_providers_refused(tmp_path: Path, providers: str, fragment: str) -> None:
    text = FAXAGE + FAXNUMMER + ROUTE + f"[inbound]\nproviders = {providers}\n"
    assert fragment in only(problems(tmp_path, text), "[inbound] providers")


def test_only_faxnummer_needs_inbound_off(tmp_path: Path) -> None:
    """faxnummer.de alone cannot receive: [inbound] enabled must be false, and then it loads."""
    text = FAXNUMMER + ROUTE + OUTBOX
    for inbound in ("[inbound]\nenabled = true\n", ""):  # receiving is on by default
        message = only(problems(tmp_path, text + inbound), "[inbound] enabled")
        assert FAXNUMMER_CANNOT_RECEIVE in message
    config = load(tmp_path, text + "[inbound]\nenabled = false\n")
    assert config.inbound_providers == () and config.outbound_provider == "faxnummer"


def test_outbound_provider_required_with_two_senders(tmp_path: Path) -> None:
    text = FAXAGE + IFAX + ROUTE + OUTBOX
    message = only(problems(tmp_path, text), "[outbound] provider")
    assert "more than one configured provider can send (faxage, ifax)" in message
    assert load(tmp_path, text + 'provider = "ifax"\n').outbound_provider == "ifax"
    # With the hot folder off nothing is sent, so nothing needs choosing.
    off = FAXAGE + IFAX + ROUTE + "[outbound]\nenabled = false\n"
    assert load(tmp_path, off).outbound_provider == "faxage"


def test_voipms_sends_only_with_a_from_number(tmp_path: Path) -> None:
    """[voipms] without from_number is not a sender: alone with FAXAGE, FAXAGE sends."""
    assert load(tmp_path, FAXAGE + VOIPMS + ROUTE + OUTBOX).outbound_provider == "faxage"
    text = FAXAGE + VOIPMS + ROUTE + OUTBOX + 'provider = "voipms"\n'
    assert "set from_number in [voipms]" in only(problems(tmp_path, text), "[outbound] provider")


@pytest.mark.parametrize(
    ("provider", "fragment"),
    [("ifax", "'ifax' is not configured"), ("fax", "'fax' is not a provider")],
)
def test_outbound_provider_must_be_configured(
    tmp_path: Path, provider: str, fragment: str
) -> None:
    text = FAXAGE + ROUTE + OUTBOX + f'provider = "{provider}"\n'
    assert fragment in only(problems(tmp_path, text), "[outbound] provider")


# -- check-config ------------------------------------------------------------------------------


def test_check_config_shows_each_provider_without_secrets(tmp_path: Path) -> None:
    """Each configured provider: account, where its secret came from, what it does here."""
    text = (
        FAXAGE + VOIPMS + 'after_delivery = "move"\narchive_folder = "DONE"\n'
        + 'from_number = "5552341234"\n' + IFAX + FAXNUMMER + ROUTE + OUTBOX
        + 'provider = "faxnummer"\n[inbound]\nproviders = ["voipms", "ifax"]\n'
    )  # fmt: skip
    rendered = render_config(load(tmp_path, text))
    sections = {
        block.splitlines()[0]: " ".join(block.split())  # unwrapped
        for block in rendered.split("\n\n")
        if block.strip()
    }
    voipms = sections["VoIP.ms [voipms]"]
    assert "office@example.com" in voipms
    assert "set (from environment variable FAXD_VOIPMS_PASSWORD)" in voipms
    assert "receive (moved to DONE after delivery)" in voipms
    assert "send (not the hot folder's provider)" in voipms
    ifax = sections["iFax [ifax]"]
    assert "set (from environment variable FAXD_IFAX_TOKEN)" in ifax
    assert "kept on iFax" in ifax
    fxn = sections["faxnummer.de [faxnummer]"]
    assert "acc12345" in fxn and "FAXD_FAXNUMMER_CODE" in fxn
    assert "no receiving" in fxn and "send (the hot folder's provider)" in fxn
    faxage = sections["FAXAGE [faxage]"]
    assert "receive (not polled" in faxage
    assert "providers voipms, ifax" in sections["Inbound"]
    assert "provider faxnummer" in sections["Outbound"]
    for secret in (VOIPMS_PW, IFAX_TOKEN, FXN_CODE, FAXAGE_PW):
        assert secret not in rendered
    assert [line for line in rendered.splitlines() if len(line) > 80] == []


def test_status_account_without_faxage(tmp_path: Path) -> None:
    """Without [faxage] the one-account views name the first polled provider's account."""
    config = load(tmp_path, VOIPMS + IFAX + ROUTE)
    assert config.account == "office@example.com"
    with pytest.raises(ConfigError, match=r"faxd faxage needs a \[faxage\] section"):
        config.require_faxage("faxd faxage")


def test_example_provider_sections_load_when_uncommented(tmp_path: Path) -> None:
    """config/faxd.toml's commented provider sections are valid as written (DESIGN's)."""
    example = Path(__file__).resolve().parent.parent / "config" / "faxd.toml"
    lines = example.read_text().splitlines()
    start = lines.index("# [voipms]                               # VoIP.ms: receives and sends")
    end = next(i for i, line in enumerate(lines) if line.startswith("# status_email"))
    for i in range(start, end + 1):
        lines[i] = lines[i][2:]
    for i, line in enumerate(lines):
        if line.startswith(("# providers = ", "# provider = ")):
            lines[i] = line[2:]
    for name, value in (("voipms-api-password", VOIPMS_PW), ("ifax-token", IFAX_TOKEN),
                        ("faxnummer-code", FXN_CODE)):  # fmt: skip
        secret = tmp_path / name
        secret.write_text(value + "\n")
        secret.chmod(0o600)
    text = "\n".join(lines).replace('_file = "/etc/faxd/', f'_file = "{tmp_path}/')
    config = load(tmp_path, text, {"FAXD_FAXAGE_PASSWORD": FAXAGE_PW})
    assert config.inbound_providers == ("faxage", "voipms")
    assert config.outbound_provider == "faxage"
    assert config.voipms is not None and config.voipms.password == VOIPMS_PW
    assert config.ifax is not None and config.ifax.access_token == IFAX_TOKEN
    assert config.faxnummer is not None and config.faxnummer.sender == "Acme GmbH"
