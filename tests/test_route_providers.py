"""Routes by provider: ``provider = ["voipms"]`` in a route, ``{provider}`` in templates,
and ``faxd retry`` finding a fax by its remote id (``--provider`` only when ambiguous)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from faxd.config import CommandSpec, RouteSpec, load_config
from faxd.errors import ConfigError, FaxdError
from faxd.routing import FaxFacts, route
from faxd.store import Database
from faxd.store.models import InboundFax
from faxd.tables import fax_provider
from faxd.templates import render_path

CONFIG = """
[faxage]
username = "acme"
company = "12345"
password = "Ex4mple-faxage-pw"

[[routes]]
name = "moving"
provider = {providers}
actions = [{{ type = "folder", path = "/srv/fax/{{provider}}/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "/srv/fax/{{recvid}}.{{ext}}" }}]
"""
RECEIVED = datetime(2024, 3, 4, 9, 0)


def load(tmp_path: Path, providers: str) -> list[RouteSpec]:
    path = tmp_path / "faxd.toml"
    path.write_text(CONFIG.format(providers=providers))
    path.chmod(0o600)
    return list(load_config(path, env={}).routes)


def facts(provider: str, remote_id: str = "17") -> FaxFacts:
    return FaxFacts(remote_id, "3035550101", "3035550100", 1, "pdf", RECEIVED, provider)


def test_a_route_may_match_providers_and_is_then_no_default(tmp_path: Path) -> None:
    """provider = ["voipms", "IFAX"] is read (case-insensitively) and keeps the route specific."""
    moving, default = load(tmp_path, '["voipms", "IFAX"]')
    assert moving.providers == ("voipms", "ifax") and not moving.is_default
    assert route(facts("voipms"), [moving, default], RECEIVED).name == "moving"
    assert route(facts("ifax"), [moving, default], RECEIVED).name == "moving"
    assert route(facts("faxage"), [moving, default], RECEIVED).name == "default"


def test_a_route_without_provider_takes_every_provider() -> None:
    """No provider key: the route matches faxes from any provider."""
    anyone = RouteSpec("sales", dnis=("3035550101",), actions=(CommandSpec(argv=("x",)),))
    for name in ("faxage", "voipms", "ifax"):
        assert route(facts(name), [anyone], RECEIVED).name == "sales"


def test_an_unknown_or_empty_provider_list_is_refused_with_the_names(tmp_path: Path) -> None:
    """A misspelt provider names the ones faxd knows; an empty list says what it would do."""
    with pytest.raises(ConfigError) as unknown:
        load(tmp_path, '["voip.ms"]')
    (problem,) = [p for p in unknown.value.problems if "provider" in p]
    assert "'voip.ms'" in problem and "faxage, voipms, ifax, faxnummer" in problem
    with pytest.raises(ConfigError) as empty:
        load(tmp_path, "[]")
    assert any("take no fax" in p for p in empty.value.problems)


def test_templates_gain_provider_and_keep_a_hostile_remote_id_in_its_folder() -> None:
    """{provider} renders the provider; a remote id with slashes stays one file name."""
    fields = facts("ifax", "../../etc/passwd").template_fields("moving")
    path = Path(render_path("/srv/fax/{provider}/{recvid}.{ext}", fields))
    assert path.parent == Path("/srv/fax/ifax") and path.suffix == ".pdf"


def test_retry_finds_the_provider_and_asks_only_when_two_have_the_id(tmp_path: Path) -> None:
    """One fax with the id: its provider; two: a message naming both and --provider."""
    db = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    db.upgrade()
    try:
        with db.session() as session:
            for provider, remote_id in (("faxage", "104730"), ("faxage", "17"), ("voipms", "17")):
                session.add(InboundFax(provider=provider, account="a", remote_id=remote_id,
                                       recvdate=RECEIVED, state="failed"))  # fmt: skip
        assert fax_provider(db, "104730") == "faxage"
        with pytest.raises(FaxdError, match="faxage and voipms both have the id 17") as both:
            fax_provider(db, "17")
        assert "--provider" in both.value.message
        with pytest.raises(FaxdError, match="no inbound fax 99"):
            fax_provider(db, "99")
    finally:
        db.dispose()
