"""Tests for faxd.config: loading, every class of config error, passwords, paths, check-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from faxd.check_config import render_config
from faxd.config import (
    CommandSpec,
    Config,
    EmailSpec,
    FolderSpec,
    PrintSpec,
    config_path,
    load_config,
)
from faxd.errors import ConfigError
from faxd.redact import MASK, redact

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "faxd.toml"
PASSWORD = "Ex4mple-faxage-pw"

FAXAGE = """
[faxage]
username = "acme"
company = "12345"
"""
DEFAULT_ROUTE = """
[[routes]]
name = "default"
actions = [{ type = "folder", path = "/srv/fax/{recvid}.{ext}" }]
"""


def write(tmp_path: Path, text: str, *, mode: int = 0o600, name: str = "faxd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def load(tmp_path: Path, text: str, **env: str) -> Config:
    env.setdefault("FAXD_FAXAGE_PASSWORD", PASSWORD)
    return load_config(write(tmp_path, text), env=env)


def problems(tmp_path: Path, text: str, *, mode: int = 0o600, **env: str) -> list[str]:
    env.setdefault("FAXD_FAXAGE_PASSWORD", PASSWORD)
    path = write(tmp_path, text, mode=mode)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    return caught.value.problems


def only(found: list[str], fragment: str) -> str:
    matching = [p for p in found if fragment in p]
    assert len(matching) == 1, found
    return matching[0]


# -- the example and the basics ---------------------------------------------------------


def test_example_config_loads_with_password_from_env() -> None:
    """config/faxd.toml loads as shipped, given the password through the environment."""
    config = load_config(EXAMPLE, env={"FAXD_FAXAGE_PASSWORD": PASSWORD})

    assert config.faxage.account == "acme@12345"
    assert config.faxage.password == PASSWORD
    assert [r.name for r in config.routes] == [
        "sales",
        "sales-after-hours",
        "accounts",
        "front-desk",
        "default",
    ]
    assert config.routes[0].dnis == ("+13035550101",)
    assert config.routes[3].dnis == ("+13035550100",)
    assert config.routes[-1].is_default
    assert {type(a) for r in config.routes for a in r.actions} == {FolderSpec, PrintSpec, EmailSpec}
    assert config.smtp is not None and config.smtp.from_addr == "faxd@example.com"
    assert config.outbound.enabled and config.outbound.resolution == 1
    assert config.outbound.tagnumber == "1.303.555.0199"


def test_defaults_fill_everything_not_given(tmp_path: Path) -> None:
    """A minimal file gets the documented defaults."""
    config = load(tmp_path, FAXAGE + DEFAULT_ROUTE)

    assert config.faxage.base_url == "https://api.faxage.com"
    assert config.faxage.timeout == 60
    assert config.database.url == "sqlite:////var/lib/faxd/faxd.db"
    assert config.inbound.poll_interval == 60 and config.inbound.sweep_interval == 3600
    assert config.inbound.spool_dir == Path("/var/lib/faxd/spool")
    assert config.inbound.delete_after_delivery is True
    assert (config.inbound.max_attempts, config.inbound.concurrency) == (10, 4)
    assert (config.inbound.backoff_base, config.inbound.backoff_max) == (30, 3600)
    assert config.smtp is None
    assert config.outbound.enabled is False
    assert config.outbound.spool_dir == Path("/var/lib/faxd/outbound")


def test_missing_file_names_path_and_fixes(tmp_path: Path) -> None:
    """A missing config file says which path was tried and how to point faxd elsewhere."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, env={})
    message = str(caught.value)
    assert str(missing) in message
    assert "--config" in message and "FAXD_CONFIG" in message and "config/faxd.toml" in message


def test_config_path_order(tmp_path: Path) -> None:
    """The explicit path beats FAXD_CONFIG, which beats /etc/faxd/faxd.toml."""
    assert config_path(None, {}) == Path("/etc/faxd/faxd.toml")
    assert config_path(None, {"FAXD_CONFIG": str(tmp_path / "a.toml")}) == tmp_path / "a.toml"
    assert config_path(tmp_path / "b.toml", {"FAXD_CONFIG": "/x.toml"}) == tmp_path / "b.toml"


def test_faxd_config_env_is_used_by_load_config(tmp_path: Path) -> None:
    """load_config() without a path reads the file FAXD_CONFIG names."""
    path = write(tmp_path, FAXAGE + DEFAULT_ROUTE)
    config = load_config(env={"FAXD_CONFIG": str(path), "FAXD_FAXAGE_PASSWORD": PASSWORD})
    assert config.path == path


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    """A TOML syntax error is reported with the file, line and column."""
    found = problems(tmp_path, FAXAGE + "\n[inbound]\npoll_interval = = 3\n")
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'faxd.toml'}: TOML syntax error")
    assert "line 7" in found[0] and "column" in found[0]


# -- unknown keys and types -------------------------------------------------------------


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    """A misspelt key is an error naming file, section and the likely intended key."""
    found = problems(tmp_path, FAXAGE + DEFAULT_ROUTE + "[inbound]\npol_interval = 5\n")
    file = tmp_path / "faxd.toml"
    assert found == [f"{file}: [inbound] pol_interval: unknown key; did you mean poll_interval?"]


def test_unknown_section_and_action_key(tmp_path: Path) -> None:
    """Unknown sections and unknown keys inside an action are both reported."""
    text = (
        FAXAGE
        + "[outbund]\nenabled = true\n"
        + DEFAULT_ROUTE.replace(
            'path = "/srv/fax/{recvid}.{ext}"', 'path = "/srv/fax/{recvid}.{ext}", color = "blue"'
        )
    )
    found = problems(tmp_path, text)
    assert only(found, "[outbund]").endswith("unknown section; did you mean outbound?")
    assert only(found, "routes[0].actions[0].color").endswith("unknown key")


def test_unknown_template_field_lists_known_fields(tmp_path: Path) -> None:
    """A path template with a wrong field names the route, action and the known fields."""
    text = FAXAGE + DEFAULT_ROUTE.replace("{recvid}.{ext}", "{recvd}.{ext}")
    found = problems(tmp_path, text)
    assert only(found, "path").startswith(
        f"{tmp_path / 'faxd.toml'}: routes[0].actions[0].path: unknown field {{recvd}}; "
        "known: {recvid} {dnis} {cid} {pages} {ext} {route} {received}"
    )


def test_wrong_types_are_named(tmp_path: Path) -> None:
    """Text for a number, text for a bool and a fraction for a count are each reported."""
    text = (
        FAXAGE
        + DEFAULT_ROUTE
        + (
            '[inbound]\npoll_interval = "60s"\nenabled = "yes"\n'
            "max_attempts = 2.5\nconcurrency = 0\n"
        )
    )
    found = problems(tmp_path, text)
    assert "must be a number of seconds" in only(found, "[inbound] poll_interval")
    assert "must be true or false" in only(found, "[inbound] enabled")
    assert "must be a whole number" in only(found, "[inbound] max_attempts")
    assert "from 1 to 32" in only(found, "[inbound] concurrency")


def test_all_problems_are_collected_in_one_error(tmp_path: Path) -> None:
    """Independent mistakes across sections come back together, not one per run."""
    text = """
[faxage]
company = "12345"
timeout = -1
[inbound]
backoff_base = 60
backoff_max = 10
[[routes]]
name = "x"
dnis = ["555"]
actions = []
"""
    found = problems(tmp_path, text)
    assert len(found) == 5, found
    only(found, "[faxage] username: missing")
    only(found, "[faxage] timeout")
    only(found, "[inbound] backoff_max")
    only(found, "routes[0].dnis[0]")
    only(found, "routes[0].actions: missing")


# -- routes -----------------------------------------------------------------------------


def test_numbers_are_normalised_and_bad_ones_named(tmp_path: Path) -> None:
    """DNIS and caller ids are stored as E.164; a bad one is named with its index."""
    good = (
        FAXAGE
        + DEFAULT_ROUTE.replace(
            'name = "default"',
            'name = "sales"\ndnis = ["+1 303 555 0101", "(303)555-0102"]\ncid = ["Unavailable"]',
        )
        + DEFAULT_ROUTE
    )
    config = load(tmp_path, good)
    assert config.routes[0].dnis == ("+13035550101", "+13035550102")
    assert config.routes[0].cid == ("",)

    found = problems(tmp_path, good.replace('"(303)555-0102"', '"555-0102"'))
    assert "'555-0102' is not a 10-digit fax number" in only(found, "routes[0].dnis[1]")


def test_route_numbers_may_be_international_or_national_in_country(tmp_path: Path) -> None:
    """dnis/cid take +49 and 0049 forms, and national numbers of [outbound] country."""
    route = DEFAULT_ROUTE.replace(
        'name = "default"',
        'name = "berlin"\ndnis = ["+49 30 1234567", "0049 30 1234568", "030 123456"]\n'
        'cid = ["+44 20 7946 0018"]',
    )
    text = FAXAGE + route + DEFAULT_ROUTE
    found = problems(tmp_path, text)  # read in the US, 030 123456 is too short
    assert "10-digit" in only(found, "routes[0].dnis[2]") and len(found) == 1
    german = load(tmp_path, text + '\n[outbound]\nenabled = false\ncountry = "de"\n')
    assert german.country == german.outbound.country == "DE"
    assert german.routes[0].dnis == ("+49301234567", "+49301234568", "+4930123456")
    assert german.routes[0].cid == ("+442079460018",)


def test_country_must_be_one_phonenumbers_knows(tmp_path: Path) -> None:
    """A made-up [outbound] country is named, with what to write instead."""
    text = FAXAGE + DEFAULT_ROUTE + '\n[outbound]\nenabled = false\ncountry = "Germany"\n'
    assert "ISO 3166" in only(problems(tmp_path, text), "[outbound] country")
    assert load(tmp_path, FAXAGE + DEFAULT_ROUTE).country == "US"


def test_bad_hours_are_reported_with_the_route(tmp_path: Path) -> None:
    """A route with unparsable hours names the route and the bad day."""
    text = (
        FAXAGE
        + DEFAULT_ROUTE.replace('name = "default"', 'name = "day"\nhours = "Mon-Fry 08:00-18:00"')
        + DEFAULT_ROUTE
    )
    found = problems(tmp_path, text)
    assert "'Fry' is not a day" in only(found, "routes[0].hours")


def test_duplicate_route_names(tmp_path: Path) -> None:
    """Two routes with the same name (ignoring case) are refused."""
    first = DEFAULT_ROUTE.replace('name = "default"', 'name = "Sales"\ndnis = "3035550101"')
    text = FAXAGE + first + first.replace("Sales", "sales") + DEFAULT_ROUTE
    found = problems(tmp_path, text)
    assert "also the name of routes[0]" in only(found, "routes[1].name")


def test_two_default_routes_are_refused(tmp_path: Path) -> None:
    """More than one route without match keys is an error naming both."""
    text = FAXAGE + DEFAULT_ROUTE + DEFAULT_ROUTE.replace('"default"', '"other"')
    message = only(problems(tmp_path, text), "more than one default route")
    assert "routes[0] ('default')" in message and "routes[1] ('other')" in message


def test_default_route_must_be_last(tmp_path: Path) -> None:
    """A default route followed by other routes is refused: they could never match."""
    later = DEFAULT_ROUTE.replace('name = "default"', 'name = "sales"\ndnis = "3035550101"')
    message = only(problems(tmp_path, FAXAGE + DEFAULT_ROUTE + later), "could never match")
    assert "routes[0]" in message and "routes[1] ('sales')" in message


def test_no_routes_with_inbound_enabled(tmp_path: Path) -> None:
    """Inbound enabled with no routes at all would hold every fax: refused."""
    assert "no [[routes]]" in only(problems(tmp_path, FAXAGE), "routes")


def test_email_action_needs_smtp(tmp_path: Path) -> None:
    """An email action without an [smtp] section names the action and the fix."""
    text = FAXAGE + DEFAULT_ROUTE.replace(
        '{ type = "folder", path = "/srv/fax/{recvid}.{ext}" }',
        '{ type = "email", to = ["a@example.com"] }',
    )
    assert "needs an [smtp] section" in only(problems(tmp_path, text), "routes[0].actions[0]")


def test_actions_are_read_with_defaults(tmp_path: Path) -> None:
    """Print, email and command actions get their defaults; a string argv is split."""
    text = (
        FAXAGE
        + """
[smtp]
host = "mail.example.com"
from = "faxd@example.com"
[[routes]]
name = "all"
actions = [
  { type = "print" },
  { type = "email", to = "a@example.com", attach = false },
  { type = "command", argv = "hooks/notify --fax 'two words'" },
]
"""
    )
    printer, email, command = load(tmp_path, text).routes[0].actions
    assert printer == PrintSpec(printer="", options=(), copies=1, command="lp")  # lp's default
    assert isinstance(email, EmailSpec)
    assert email.to == ("a@example.com",)
    assert email.subject == "Fax from {cid} ({pages} pages)"
    assert "{pages}" in email.body and "attached" not in email.body
    assert command == CommandSpec(
        argv=(str(tmp_path / "hooks/notify"), "--fax", "two words"), timeout=60.0
    )


# -- faxage account and passwords -------------------------------------------------------


def test_missing_username_company_and_password(tmp_path: Path) -> None:
    """An empty [faxage] names username, company and the password sources."""
    found = problems(tmp_path, "[faxage]\n" + DEFAULT_ROUTE, FAXD_FAXAGE_PASSWORD="")
    assert "missing" in only(found, "[faxage] username")
    assert "company ID" in only(found, "[faxage] company")
    message = only(found, "no password given")
    assert "password_file" in message and "FAXD_FAXAGE_PASSWORD" in message
    assert "LoadCredential=faxage-password" in message


def test_password_sources_in_order(tmp_path: Path) -> None:
    """password beats password_file beats FAXD_FAXAGE_PASSWORD beats the systemd credential."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "faxage-password").write_text("from-credential\n")
    pw_file = write(tmp_path, "from-file\n", name="pw")
    env = {"FAXD_FAXAGE_PASSWORD": "from-env", "CREDENTIALS_DIRECTORY": str(creds)}

    def password(extra: str, **override: str) -> tuple[str, str]:
        path = write(tmp_path, FAXAGE + extra + DEFAULT_ROUTE)
        faxage = load_config(path, env={**env, **override}).faxage
        return faxage.password, faxage.password_source

    both = f'password = "inline-pw"\npassword_file = "{pw_file}"\n'
    assert password(both)[0] == "inline-pw"
    assert password(f'password_file = "{pw_file}"\n') == ("from-file", f"password_file {pw_file}")
    assert password("")[0] == "from-env"
    assert password("", FAXD_FAXAGE_PASSWORD="") == (
        "from-credential",
        "systemd credential faxage-password",
    )


def test_password_file_loses_only_one_newline_and_is_registered(tmp_path: Path) -> None:
    """Exactly one trailing newline is stripped, and the password is then redacted everywhere."""
    write(tmp_path, "  spaced pw  \n", name="pw")
    config = load(tmp_path, FAXAGE + 'password_file = "pw"\n' + DEFAULT_ROUTE)
    assert config.faxage.password == "  spaced pw  "
    assert redact("login with   spaced pw  ") == f"login with {MASK}"


def test_config_holding_password_must_be_private(tmp_path: Path) -> None:
    """A config file with a password readable by group/others is refused with the chmod fix."""
    text = FAXAGE + f'password = "{PASSWORD}"\n' + DEFAULT_ROUTE
    found = problems(tmp_path, text, mode=0o640)
    path = tmp_path / "faxd.toml"
    message = only(found, "group/others can read it")
    assert message.startswith(f"{path}: [faxage]")
    assert f"chmod 600 {path}" in message and "password_file" in message
    assert PASSWORD not in " ".join(found)

    path.chmod(0o600)
    assert load_config(path, env={}).faxage.password == PASSWORD


def test_password_file_must_be_private(tmp_path: Path) -> None:
    """A password_file readable by others is refused; the same file at 0600 is used."""
    pw_file = write(tmp_path, "pw-in-file\n", name="pw", mode=0o644)
    text = FAXAGE + 'password_file = "pw"\n' + DEFAULT_ROUTE
    message = only(problems(tmp_path, text), "[faxage] password_file")
    assert f"chmod 600 {pw_file}" in message and "mode 0644" in message

    pw_file.chmod(0o600)
    assert load(tmp_path, text).faxage.password == "pw-in-file"


def test_missing_password_file_is_named(tmp_path: Path) -> None:
    """A password_file that does not exist is named with its resolved path."""
    found = problems(tmp_path, FAXAGE + 'password_file = "missing-pw"\n' + DEFAULT_ROUTE)
    assert f"{tmp_path / 'missing-pw'} does not exist" in only(found, "password_file")


def test_smtp_password_sources(tmp_path: Path) -> None:
    """The SMTP password comes from FAXD_SMTP_PASSWORD or the smtp-password credential."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "smtp-password").write_text("smtp-cred\n")
    text = (
        FAXAGE
        + DEFAULT_ROUTE
        + '[smtp]\nhost = "mx"\nsecurity = "starttls"\nusername = "u"\nfrom = "f@example.com"\n'
    )

    smtp = load(tmp_path, text, FAXD_SMTP_PASSWORD="smtp-env").smtp
    assert smtp is not None and smtp.password == "smtp-env"
    smtp = load(tmp_path, text, CREDENTIALS_DIRECTORY=str(creds)).smtp
    assert smtp is not None and smtp.password == "smtp-cred"
    assert "no password is given" in only(problems(tmp_path, text), "[smtp]")


def test_smtp_security_and_port(tmp_path: Path) -> None:
    """security = "tls" defaults the port to 465; a bad security value suggests a fix."""
    text = FAXAGE + DEFAULT_ROUTE + '[smtp]\nhost = "mx"\nfrom = "f@example.com"\n'
    smtp = load(tmp_path, text + 'security = "tls"\n').smtp
    assert smtp is not None and (smtp.port, smtp.security) == (465, "tls")
    found = problems(tmp_path, text + 'security = "startls"\n')
    assert only(found, "[smtp] security").endswith("did you mean starttls?")


def test_password_never_in_repr_or_errors(tmp_path: Path) -> None:
    """repr(Config) hides the password, and so do the problems of a broken file."""
    config = load(tmp_path, FAXAGE + DEFAULT_ROUTE)
    assert PASSWORD not in repr(config)
    text = FAXAGE + f'password = "{PASSWORD}"\n' + DEFAULT_ROUTE + "[inbound]\nx = 1\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)


# -- paths and outbound -----------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    """Spool, database, folder templates and outbound folders are taken from the file's folder."""
    text = (
        FAXAGE
        + """
[database]
url = "sqlite:///state/faxd.db"
[inbound]
spool_dir = "spool"
[[routes]]
name = "default"
actions = [{ type = "folder", path = "fax/{route}/{recvid}.{ext}" }]
[outbound]
hot_folder = "outbox"
sent_folder = "sent"
failed_folder = "/abs/failed"
"""
    )
    config = load(tmp_path, text)
    assert config.database.url == f"sqlite:///{tmp_path}/state/faxd.db"
    assert config.inbound.spool_dir == tmp_path / "spool"
    assert config.routes[0].actions[0] == FolderSpec(f"{tmp_path}/fax/{{route}}/{{recvid}}.{{ext}}")
    assert config.outbound.hot_folder == tmp_path / "outbox"
    assert config.outbound.sent_folder == tmp_path / "sent"
    assert config.outbound.failed_folder == Path("/abs/failed")
    assert config.outbound.spool_dir == tmp_path / "outbound"


def test_braces_in_the_config_folder_do_not_become_template_fields(tmp_path: Path) -> None:
    """A config folder named with braces is escaped before joining a relative template."""
    odd = tmp_path / "{weird}"
    odd.mkdir()
    text = FAXAGE + DEFAULT_ROUTE.replace("/srv/fax/{recvid}", "fax/{recvid}")
    config = load(odd, text)
    folder = config.routes[0].actions[0]
    assert isinstance(folder, FolderSpec)
    assert folder.path == f"{tmp_path}/{{{{weird}}}}/fax/{{recvid}}.{{ext}}"


def test_outbound_options(tmp_path: Path) -> None:
    """resolution, priority, poll_seconds and tagnumber are mapped to what FAXAGE wants."""
    text = (
        FAXAGE
        + DEFAULT_ROUTE
        + """
[outbound]
hot_folder = "/o"
sent_folder = "/s"
failed_folder = "/f"
resolution = "superfine"
priority = "low"
poll_seconds = 5
tagnumber = "(303) 555-0199"
"""
    )
    outbound = load(tmp_path, text).outbound
    assert (outbound.resolution, outbound.priority, outbound.poll_seconds) == (2, "low", 5.0)
    assert outbound.tagnumber == "1.303.555.0199"
    assert outbound.max_attempts == 10 and outbound.clear_after_status is False
    assert load(tmp_path, text.replace("superfine", "standard")).outbound.resolution is None


def test_outbound_max_file_mb(tmp_path: Path) -> None:
    """[outbound] max_file_mb is 100 by default, read when given, and must be a whole number."""
    folders = '[outbound]\nhot_folder = "/o"\nsent_folder = "/s"\nfailed_folder = "/f"\n'
    assert load(tmp_path, FAXAGE + DEFAULT_ROUTE + folders).outbound.max_file_mb == 100
    given = FAXAGE + DEFAULT_ROUTE + folders + "max_file_mb = 250\n"
    assert load(tmp_path, given).outbound.max_file_mb == 250
    found = problems(tmp_path, FAXAGE + DEFAULT_ROUTE + folders + "max_file_mb = 0\n")
    assert "1 or more" in only(found, "[outbound] max_file_mb")


def test_outbound_needs_its_folders(tmp_path: Path) -> None:
    """An enabled [outbound] without folders names each missing one."""
    found = problems(tmp_path, FAXAGE + DEFAULT_ROUTE + "[outbound]\nenabled = true\n")
    for key in ("hot_folder", "sent_folder", "failed_folder"):
        assert "missing" in only(found, f"[outbound] {key}")


# -- check-config -----------------------------------------------------------------------


def test_render_config_shows_routes_and_masks_secrets(tmp_path: Path) -> None:
    """check-config output lists routes in order, fits 80 columns and shows no secret."""
    smtp_pw = "smtp-Secret-77"
    pw_file = write(tmp_path, smtp_pw, name="smtp-pw")
    example = (
        EXAMPLE.read_text()
        .replace('# username = "faxd"', f'username = "faxd"\npassword_file = "{pw_file}"')
        .replace(
            'url = "sqlite:////var/lib/faxd/faxd.db"',
            'url = "postgresql://faxd:db-Pass-99@db/faxd"',
        )
    )
    config = load_config(write(tmp_path, example), env={"FAXD_FAXAGE_PASSWORD": PASSWORD})

    text = render_config(config)

    for secret in (PASSWORD, smtp_pw, "db-Pass-99"):
        assert secret not in text
    assert "postgresql+psycopg://faxd@db/faxd" in text  # the password taken out of it
    assert "acme@12345" in text and "environment variable FAXD_FAXAGE_PASSWORD" in text
    assert [line for line in text.splitlines() if len(line) > 80] == []
    positions = [text.index(f". {r.name}\n") for r in config.routes]
    assert positions == sorted(positions)
    assert "(303) 555-0102" in text and "lp -d sales-laser" in text
    assert "/srv/fax/outbox" in text and "/srv/fax/failed" in text


def test_example_file_holds_no_password() -> None:
    """The shipped example holds no password, so copying it never trips the mode check."""
    text = EXAMPLE.read_text()
    assert not any(line.strip().startswith("password") for line in text.splitlines())


@pytest.mark.parametrize("key", ["dnis", "cid"])
def test_an_empty_match_list_does_not_make_a_catch_all_route(tmp_path: Path, key: str) -> None:
    """``dnis = []`` is an error naming the key, not a silent default route taking every fax."""
    text = FAXAGE + DEFAULT_ROUTE.replace('name = "default"', f'name = "sales"\n{key} = []')
    message = only(problems(tmp_path, text), f"routes[0].{key}")
    assert "empty" in message and "remove" in message


@pytest.mark.parametrize(
    "sender", ["faxd@example.com\\r\\nBcc: x@evil.example", "faxd", "a@b.c, d@e.f"]
)
def test_smtp_from_must_be_one_clean_address(tmp_path: Path, sender: str) -> None:
    """A From with line breaks, without an @ or with two addresses is refused at load time."""
    text = FAXAGE + DEFAULT_ROUTE + f'[smtp]\nhost = "localhost"\nfrom = "{sender}"\n'
    message = only(problems(tmp_path, text), "[smtp] from")
    assert "one email address" in message


def test_smtp_from_may_have_a_display_name(tmp_path: Path) -> None:
    """``Fax Server <faxd@example.com>`` is a valid sender."""
    text = FAXAGE + DEFAULT_ROUTE + '[smtp]\nhost = "h"\nfrom = "Fax Server <faxd@example.com>"\n'
    smtp = load(tmp_path, text).smtp
    assert smtp is not None and smtp.from_addr == "Fax Server <faxd@example.com>"


def test_a_slash_in_a_path_field_format_is_refused(tmp_path: Path) -> None:
    """``{received:%Y/%m}`` would silently become one folder ``2024_03``; the loader says how."""
    text = FAXAGE + DEFAULT_ROUTE.replace("{recvid}.{ext}", "{received:%Y/%m}/{recvid}.{ext}")
    message = only(problems(tmp_path, text), "routes[0].actions[0].path")
    assert "{received:%Y}/{received:%m}" in message


def test_email_to_with_a_control_character_is_refused(tmp_path: Path) -> None:
    """A recipient holding a NUL (or another control character) is refused at load time."""
    text = (
        FAXAGE
        + DEFAULT_ROUTE.replace(
            'actions = [{ type = "folder", path = "/srv/fax/{recvid}.{ext}" }]',
            'actions = [{ type = "email", to = ["ok@example.com", "a@b.example\\u0000"] }]',
        )
        + '[smtp]\nhost = "h"\nfrom = "faxd@example.com"\n'
    )
    assert "is not one email address" in only(problems(tmp_path, text), "to[1]")


def test_smtp_login_without_tls_only_to_this_machine(tmp_path: Path) -> None:
    """A login with security = "none" to another host is refused (clear-text password)."""
    smtp = '[smtp]\nhost = "HOST"\nusername = "u"\nfrom = "f@example.com"\n'
    text = FAXAGE + DEFAULT_ROUTE + smtp
    message = only(
        problems(tmp_path, text.replace("HOST", "mail.example.com"), FAXD_SMTP_PASSWORD="pw-x"),
        "[smtp] security",
    )
    assert "clear text" in message and "starttls" in message
    for host in ("localhost", "127.0.0.1", "::1"):
        loaded = load(tmp_path, text.replace("HOST", host), FAXD_SMTP_PASSWORD="pw-x").smtp
        assert loaded is not None and loaded.username == "u"


def test_plain_http_base_url_only_to_this_machine(tmp_path: Path) -> None:
    """http:// would send the FAXAGE password in clear text: allowed only to a local simulator."""
    text = FAXAGE + 'base_url = "URL"\n' + DEFAULT_ROUTE
    message = only(problems(tmp_path, text.replace("URL", "http://api.faxage.com")), "base_url")
    assert "clear text" in message and "https://" in message
    for url in ("http://127.0.0.1:8025", "http://localhost:8025/", "https://www.faxage.com"):
        assert load(tmp_path, text.replace("URL", url)).faxage.base_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.evil.com",
        "http://127.evil.com:8025",
        "http://evil.localhost",
        "http://localhost.evil.com",
        "http://10.0.0.1",
    ],
)
def test_plain_http_to_a_look_alike_host_is_refused(tmp_path: Path, url: str) -> None:
    """Issue 10 #8: a DNS name that only looks like loopback is another machine."""
    text = FAXAGE + f'base_url = "{url}"\n' + DEFAULT_ROUTE
    assert "clear text" in only(problems(tmp_path, text), "base_url")


def test_plain_http_to_any_loopback_address_is_allowed(tmp_path: Path) -> None:
    for url in ("http://127.0.0.2:8025", "http://[::1]:8025", "http://LOCALHOST"):
        text = FAXAGE + f'base_url = "{url}"\n' + DEFAULT_ROUTE
        assert load(tmp_path, text).faxage.base_url == url


def test_faxage_timezone_is_checked_and_exposed(tmp_path: Path) -> None:
    """[faxage] timezone names the zone of FAXAGE's timestamps; a bad name is refused."""
    from zoneinfo import ZoneInfo

    good = tmp_path / "good.toml"
    good.write_text(
        '[faxage]\nusername = "acme"\ncompany = "1"\ntimezone = "America/Denver"\n'
        '[inbound]\nenabled = false\n[outbound]\nenabled = false\n'
    )
    config = load_config(good, env={"FAXD_FAXAGE_PASSWORD": "pw-1234"})
    assert config.faxage.server_zone == ZoneInfo("America/Denver")
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("America/Denver", "Mars/Olympus"))
    with pytest.raises(ConfigError) as caught:
        load_config(bad, env={"FAXD_FAXAGE_PASSWORD": "pw-1234"})
    assert any("timezone" in p and "Mars/Olympus" in p for p in caught.value.problems)
