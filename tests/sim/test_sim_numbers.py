"""DID operations, getcdr.php and provision.php."""

from __future__ import annotations

from simapi import Api, ManualClock

from faxd.sim import FaxageSimulator


def test_listlines(sim: FaxageSimulator, api: Api) -> None:
    """listlines is the account's DIDs, one a line."""
    assert api.text("listlines").splitlines() == ["3035550101", "3035550102", "3035550103"]


def test_disable_enable(sim: FaxageSimulator, api: Api) -> None:
    """disabledid/enabledid answer 'Disabled <did>' / 'Enabled <did>' and track the line."""
    assert api.text("disabledid", didnumber="3035550102") == "Disabled 3035550102"
    assert sim.disabled_lines == {"3035550102"}
    assert api.text("enabledid", didnumber="3035550102") == "Enabled 3035550102"
    assert sim.disabled_lines == set()


def test_disable_errors(api: Api) -> None:
    """A malformed DID is ERR16; one not on the account is ERR17."""
    assert api.text("disabledid", didnumber="303") == "ERR16: invalid DID number - 303"
    assert api.text("enabledid") == "ERR16: invalid DID number - "
    assert api.text("enabledid", didnumber="4155550000") == (
        "ERR17: DID 4155550000 not found or doesn't belong to you"
    )


def test_portable(api: Api) -> None:
    """portable answers 1 for a served area code and 0 otherwise."""
    assert api.text("portable", didnumber="3035551212") == "1"
    assert api.text("portable", didnumber="6055551212") == "0"
    assert api.text("portable", didnumber="12") == "0"


def test_getcdr_needs_a_range(sim: FaxageSimulator, api: Api) -> None:
    """Without begin+end or nuidgt getcdr returns nothing, as documented."""
    sim.seed_inbound(2)
    assert api.getcdr() == ""
    assert api.getcdr(begin="2000-01-01 00:00:00") == ""


def test_getcdr_inbound_and_outbound(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """Received faxes and finished jobs appear as IN/OUT CDRs, ascending by calldate."""
    sim, api, clock = timed
    (fax,) = sim.seed_inbound(1)
    api.text("sendfax", ("faxurl", "https://example.com/x"), faxno="3035550199")
    assert len(api.getcdr(nuidgt="0").splitlines()) == 1  # the job is still pending
    clock.advance(61)
    lines = api.getcdr(begin="2000-01-01 00:00:00", end="2999-01-01 00:00:00").splitlines()
    inbound, outbound = (line.split(",") for line in lines)
    assert inbound[1:4] == ["IN", "3035550100", "3035550101"]
    assert inbound[0] == fax.starttime.strftime("%Y-%m-%d %H:%M:%S")
    assert int(inbound[4]) == int((fax.recvdate - fax.starttime).total_seconds())
    assert outbound[1:4] == ["OUT", "3035550101", "3035550199"]
    assert len(inbound) == len(outbound) == 5


def test_getcdr_nuid(sim: FaxageSimulator, api: Api) -> None:
    """nuidshow puts the nuid first; nuidgt returns only later records."""
    sim.seed_inbound(3)
    shown = [line.split(",") for line in api.getcdr(nuidgt="0", nuidshow="1").splitlines()]
    nuids = [int(fields[0]) for fields in shown]
    assert len(shown[0]) == 6 and nuids == sorted(nuids)
    later = api.getcdr(nuidgt=str(nuids[0]), nuidshow="1").splitlines()
    assert [int(line.split(",")[0]) for line in later] == nuids[1:]


def test_getcdr_didnumber(sim: FaxageSimulator, api: Api) -> None:
    """didnumber keeps only inbound calls to that DID."""
    sim.seed_inbound(3)
    lines = api.getcdr(nuidgt="0", didnumber="3035550102").splitlines()
    assert len(lines) == 1 and lines[0].split(",")[3] == "3035550102"


def test_getcdr_wrong_login(sim: FaxageSimulator, api: Api) -> None:
    """getcdr.php's login error is lower case, as documented."""
    pairs = [("username", sim.username), ("company", sim.company), ("password", "x")]
    assert api.raw("/getcdr.php", [*pairs, ("nuidgt", "0")]).text == "ERR02: login incorrect"


def test_provision_lists(api: Api) -> None:
    """listac, listnpanxx (tab-separated) and listdids narrow by ac and npanxx."""
    assert api.provision("listac").splitlines() == ["202", "303", "415", "720", "888"]
    assert api.provision("listnpanxx", ac="303").splitlines() == ["303991\tDenver\tCO"]
    assert api.provision("listnpanxx", ac="999") == ""
    assert "888555\tToll-Free\tToll-Free" in api.provision("listnpanxx").splitlines()
    dids = api.provision("listdids", ac="303", npanxx="415800").splitlines()
    assert dids and all(did.startswith("415800") for did in dids)
    assert all(d.startswith("720") for d in api.provision("listdids", ac="720").splitlines())


def test_provdid_and_deprovdid(sim: FaxageSimulator, api: Api) -> None:
    """provdid adds an available DID to the account; deprovdid gives it back."""
    did = api.provision("listdids", npanxx="303991").splitlines()[0]
    assert api.provision("provdid", didnumber=did) == f"{did} provisioned"
    assert did in api.text("listlines").splitlines()
    assert did not in api.provision("listdids").splitlines()
    assert (
        api.provision("provdid", didnumber=did) == f"ERR05: {did} does not appear to be available"
    )
    assert api.provision("deprovdid", didnumber=did) == f"{did} deprovisioned"
    assert did not in sim.lines
    assert api.provision("deprovdid", didnumber=did) == (
        f"ERR05: {did} is invalid or does not belong to you"
    )


def test_provision_errors(sim: FaxageSimulator, api: Api) -> None:
    """Invalid DIDs are ERR04, unknown operations ERR03, a wrong login ERR02 (lower case)."""
    assert api.provision("provdid", didnumber="12") == "ERR04: Invalid DID number, 12"
    assert api.provision("deprovdid", didnumber="x") == "ERR04: Invalid DID number, x"
    assert api.provision("bogus") == "ERR03: unknown operation"
    pairs = [("username", "nobody"), ("company", sim.company), ("password", sim.password)]
    assert api.raw("/provision.php", [*pairs, ("operation", "listac")]).text == (
        "ERR02: login incorrect"
    )
