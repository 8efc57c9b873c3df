"""Routing: which route a fax takes by number, caller id and time of day (pure)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from faxd.config import FolderSpec, RouteSpec
from faxd.errors import RoutingError
from faxd.hours import Hours
from faxd.routing import FaxFacts, route

SALES = "+13035550101"
SUPPORT = "+13035550102"
BOSS = "+17205550199"
MONDAY_MORNING = datetime(2024, 3, 4, 10, 0)  # a Monday
MONDAY_NIGHT = datetime(2024, 3, 4, 22, 0)
SATURDAY_NOON = datetime(2024, 3, 9, 12, 0)


def facts(dnis: str = SALES, cid: str = "+13035550100") -> FaxFacts:
    return FaxFacts(recvid=17, dnis=dnis, cid=cid, pages=1, ext="pdf", received=MONDAY_MORNING)


def make_route(
    name: str,
    *,
    dnis: tuple[str, ...] = (),
    cid: tuple[str, ...] = (),
    hours: Hours | None = None,
) -> RouteSpec:
    folder = FolderSpec(f"/srv/fax/{name}/{{recvid}}.pdf")
    return RouteSpec(name=name, dnis=dnis, cid=cid, hours=hours, actions=(folder,))


OFFICE_HOURS = Hours.parse("Mon-Fri 08:00-18:00")
ROUTES = (
    make_route("boss-to-sales", dnis=(SALES,), cid=(BOSS,)),
    make_route("sales-day", dnis=(SALES,), hours=OFFICE_HOURS),
    make_route("sales-night", dnis=(SALES,)),
    make_route("support", dnis=(SUPPORT, "+13035550103")),
    make_route("default"),
)


@pytest.fixture
def server_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's local zone is UTC-7 (POSIX rule, no tz database needed)."""
    monkeypatch.setenv("TZ", "MST7")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_dnis_picks_the_route_for_that_number() -> None:
    """A fax to a number listed in a route's dnis takes that route."""
    assert route(facts(dnis=SUPPORT), ROUTES, MONDAY_MORNING).name == "support"
    assert route(facts(dnis="+13035550103"), ROUTES, MONDAY_MORNING).name == "support"


def test_first_matching_route_wins() -> None:
    """Routes are tried in order; a later route that also matches is not used."""
    assert route(facts(dnis=SALES), ROUTES, MONDAY_MORNING).name == "sales-day"
    reordered = (ROUTES[2], ROUTES[1], *ROUTES[3:])
    assert route(facts(dnis=SALES), reordered, MONDAY_MORNING).name == "sales-night"


def test_every_given_key_must_match() -> None:
    """A route with dnis and cid takes only faxes matching both."""
    assert route(facts(dnis=SALES, cid=BOSS), ROUTES, MONDAY_MORNING).name == "boss-to-sales"
    assert route(facts(dnis=SUPPORT, cid=BOSS), ROUTES, MONDAY_MORNING).name == "support"


def test_cid_alone_can_route() -> None:
    """A route with only a cid key takes that caller's faxes to any number."""
    routes = (make_route("vip", cid=(BOSS, "+13035550177")), make_route("default"))
    assert route(facts(dnis=SUPPORT, cid="+13035550177"), routes, MONDAY_MORNING).name == "vip"
    assert route(facts(dnis=SUPPORT, cid=""), routes, MONDAY_MORNING).name == "default"


def test_hours_choose_between_day_and_night_routes() -> None:
    """Within office hours the day route wins; outside them the next route does."""
    assert route(facts(), ROUTES, MONDAY_MORNING).name == "sales-day"
    assert route(facts(), ROUTES, MONDAY_NIGHT).name == "sales-night"
    assert route(facts(), ROUTES, SATURDAY_NOON).name == "sales-night"


def test_unmatched_fax_goes_to_the_default_route() -> None:
    """A fax no keyed route matches takes the route without match keys."""
    chosen = route(facts(dnis="+14155550000", cid=""), ROUTES, MONDAY_MORNING)
    assert chosen.name == "default"
    assert chosen.is_default


def test_default_route_first_shadows_everything_after_it() -> None:
    """A default route matches every fax, so routes after it are never reached."""
    routes = (make_route("default"), *ROUTES[:4])
    assert route(facts(dnis=SUPPORT), routes, MONDAY_MORNING).name == "default"


def test_no_match_and_no_default_is_a_routing_error() -> None:
    """Without a default, an unmatched fax raises RoutingError naming number, caller and fix."""
    with pytest.raises(RoutingError) as caught:
        route(facts(dnis="+14155550000", cid="+12125550123"), ROUTES[:4], MONDAY_MORNING)
    message = str(caught.value)
    assert "+14155550000" in message
    assert "+12125550123" in message
    assert "default route" in message


def test_routing_error_with_unknown_caller_still_reads_well() -> None:
    """A fax without caller id says so instead of printing an empty string."""
    with pytest.raises(RoutingError, match="unknown caller"):
        route(facts(dnis="+14155550000", cid=""), (), MONDAY_MORNING)


def test_routing_uses_the_now_it_is_given_not_the_clock() -> None:
    """route() decides by its ``now`` argument even when the real clock says otherwise."""
    with freeze_time("2024-03-04 22:00:00"):  # night by the clock
        assert route(facts(), ROUTES, MONDAY_MORNING).name == "sales-day"
    with freeze_time("2024-03-04 10:00:00"):  # day by the clock
        assert route(facts(), ROUTES, MONDAY_NIGHT).name == "sales-night"


def test_naive_now_is_local_wall_clock_under_freezegun_offset() -> None:
    """With the clock frozen at 20:30 UTC in a UTC-7 office, local 13:30 is office hours."""
    with freeze_time("2024-03-04 20:30:00", tz_offset=-7):
        local_now = datetime.now()
        assert (local_now.hour, local_now.minute) == (13, 30)
        assert route(facts(), ROUTES, local_now).name == "sales-day"
    with freeze_time("2024-03-04 20:30:00", tz_offset=0):
        assert route(facts(), ROUTES, datetime.now()).name == "sales-night"


@pytest.mark.usefixtures("server_zone")
def test_aware_now_is_converted_to_the_server_zone() -> None:
    """An aware UTC ``now`` is compared with hours on the server's local clock."""
    with freeze_time("2024-03-04 20:30:00"):
        utc_now = datetime.now(UTC)  # 13:30 in the office (UTC-7)
        assert route(facts(), ROUTES, utc_now).name == "sales-day"
    late = datetime(2024, 3, 5, 2, 30, tzinfo=UTC)  # Monday 19:30 in the office
    assert route(facts(), ROUTES, late).name == "sales-night"


def test_template_fields_name_unknown_values() -> None:
    """Missing caller id and page count become 'unknown' in templates; the rest pass through."""
    fields = FaxFacts("9", SALES, "", None, "tif", MONDAY_MORNING).template_fields("night")
    assert fields == {
        "recvid": "9",
        "provider": "unknown",
        "dnis": "3035550101",  # a NANP number renders as before: folder layouts stay
        "cid": "unknown",
        "dnis_e164": SALES,
        "cid_e164": "unknown",
        "pages": "unknown",
        "ext": "tif",
        "route": "night",
        "received": MONDAY_MORNING,
    }
    with_provider = FaxFacts("9", SALES, "", None, "tif", MONDAY_MORNING, "voipms")
    assert with_provider.template_fields("night")["provider"] == "voipms"


def test_international_dnis_and_cid_match_their_e164_form() -> None:
    """Routes and faxes compare E.164 with E.164, abroad as at home."""
    berlin, london = "+49301234567", "+442079460018"
    routes = (
        make_route("london-caller", dnis=(berlin,), cid=(london,)),
        make_route("berlin", dnis=(berlin,)),
        make_route("default"),
    )
    assert route(facts(dnis=berlin, cid=london), routes, MONDAY_MORNING).name == "london-caller"
    assert route(facts(dnis=berlin, cid=SALES), routes, MONDAY_MORNING).name == "berlin"
    # the same digits as a US number are another number
    assert route(facts(dnis="+14930123456"), routes, MONDAY_MORNING).name == "default"


@pytest.mark.parametrize(
    ("dnis", "cid", "shown"),
    [
        ("+13035550101", "+17205550199", ("3035550101", "7205550199")),
        ("+49301234567", "+442079460018", ("49301234567", "442079460018")),
        ("+49301234567", "../../etc", ("49301234567", "unknown")),
    ],
)
def test_template_numbers_are_digits_only(dnis: str, cid: str, shown: tuple[str, str]) -> None:
    """{dnis}/{cid}: NANP as the 10 digits they always were, else E.164 digits; never a path."""
    fields = FaxFacts("9", dnis, cid, 1, "pdf", MONDAY_MORNING).template_fields("r")
    assert (fields["dnis"], fields["cid"]) == shown
    assert fields["dnis_e164"] == dnis
