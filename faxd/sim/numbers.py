"""The number operations: httpsfax.php's DID ones, getcdr.php and provision.php.

- httpsfax.php: ``disabledid`` / ``enabledid`` (``Disabled <did>`` /
  ``Enabled <did>``, ``ERR16`` invalid, ``ERR17`` not yours), ``portable``
  (``1`` / ``0``), ``listlines`` (the account's DIDs, one a line).
- getcdr.php: ``[nuid,]calldate,direction,src,dst,duration`` lines, ascending
  by calldate, for received faxes and finished jobs; nothing unless begin+end
  or nuidgt is given (as the 2014 document says).
- provision.php: ``listac``, ``listnpanxx``, ``listdids``, ``provdid``,
  ``deprovdid``; its own error texts are lower-case (``ERR03: unknown operation``).
"""

from __future__ import annotations

from faxd.phone import digits
from faxd.sim.forms import Form
from faxd.sim.models import Answer, SimCdr, TextAnswer, format_time
from faxd.sim.receiving import parse_int, parse_time
from faxd.sim.state import SimState


def _lines_answer(items: list[str]) -> TextAnswer:
    return TextAnswer("".join(item + "\n" for item in items))


def _did(form: Form) -> str:
    return form.text("didnumber")


def _valid_did(did: str) -> bool:
    return len(did) == 10 and did.isdigit()


def disabledid(state: SimState, form: Form) -> Answer:
    """Busy out one of the account's DIDs."""
    return _set_enabled(state, _did(form), enabled=False)


def enabledid(state: SimState, form: Form) -> Answer:
    """Turn a busied-out DID back on."""
    return _set_enabled(state, _did(form), enabled=True)


def _set_enabled(state: SimState, did: str, *, enabled: bool) -> Answer:
    if not _valid_did(did):
        return TextAnswer(f"ERR16: invalid DID number - {did}")
    with state.lock:
        if did not in state.lines:
            return TextAnswer(f"ERR17: DID {did} not found or doesn't belong to you")
        if enabled:
            state.disabled_lines.discard(did)
        else:
            state.disabled_lines.add(did)
    return TextAnswer(f"{'Enabled' if enabled else 'Disabled'} {did}")


def portable(state: SimState, form: Form) -> Answer:
    """``1`` when the number's area code is one the simulator serves, else ``0``."""
    did = digits(_did(form))
    with state.lock:
        served = {npanxx[:3] for npanxx in state.npanxx} | {line[:3] for line in state.lines}
    return TextAnswer("1" if _valid_did(did) and did[:3] in served else "0")


def listlines(state: SimState, form: Form) -> Answer:
    """The account's DIDs, one a line."""
    with state.lock:
        return _lines_answer(list(state.lines))


def getcdr(state: SimState, form: Form) -> Answer:
    """Call detail records by begin/end or by nuidgt, optionally one DID's inbound calls."""
    begin, end = parse_time(form.text("begin")), parse_time(form.text("end"))
    nuidgt = parse_int(form.text("nuidgt"))
    if nuidgt is None and (begin is None or end is None):
        return TextAnswer("")
    state.settle_all()
    with state.lock:
        cdrs = list(state.cdrs)
    if nuidgt is not None:
        cdrs = [cdr for cdr in cdrs if cdr.nuid > nuidgt]
    if begin is not None and end is not None:
        cdrs = [cdr for cdr in cdrs if begin <= cdr.calldate <= end]
    did = form.text("didnumber")
    if did:
        cdrs = [cdr for cdr in cdrs if cdr.direction == "IN" and cdr.dst == digits(did)]
    cdrs.sort(key=lambda cdr: (cdr.calldate, cdr.nuid))
    nuidshow = form.flag("nuidshow")
    return _lines_answer([_cdr_line(cdr, nuidshow) for cdr in cdrs])


def _cdr_line(cdr: SimCdr, nuidshow: bool) -> str:
    fields = [format_time(cdr.calldate), cdr.direction, cdr.src, cdr.dst, str(cdr.duration)]
    if nuidshow:
        fields.insert(0, str(cdr.nuid))
    return ",".join(fields)


def _available(state: SimState) -> list[str]:
    with state.lock:
        return sorted(state.available_dids - set(state.lines))


def listac(state: SimState, form: Form) -> Answer:
    """Area codes with numbers available."""
    return _lines_answer(sorted({did[:3] for did in _available(state)}))


def listnpanxx(state: SimState, form: Form) -> Answer:
    """``<npanxx>\\t<rcname>\\t<rcstate>`` for NPANXXs with numbers available."""
    ac = form.text("ac")
    prefixes = sorted({did[:6] for did in _available(state) if not ac or did.startswith(ac)})
    with state.lock:
        rows = [f"{p}\t{state.npanxx[p][0]}\t{state.npanxx[p][1]}" for p in prefixes]
    return _lines_answer(rows)


def listdids(state: SimState, form: Form) -> Answer:
    """Available DIDs, narrowed by ``npanxx`` (which wins) or ``ac``."""
    prefix = form.text("npanxx") or form.text("ac")
    return _lines_answer([did for did in _available(state) if did.startswith(prefix)])


def provdid(state: SimState, form: Form) -> Answer:
    """Add an available DID to the account."""
    did = _did(form)
    if not _valid_did(did):
        return TextAnswer(f"ERR04: Invalid DID number, {did}")
    with state.lock:
        if did not in state.available_dids or did in state.lines:
            return TextAnswer(f"ERR05: {did} does not appear to be available")
        state.lines.append(did)
    return TextAnswer(f"{did} provisioned")


def deprovdid(state: SimState, form: Form) -> Answer:
    """Remove a DID from the account (it becomes available again)."""
    did = _did(form)
    if not _valid_did(did):
        return TextAnswer(f"ERR04: Invalid DID number, {did}")
    with state.lock:
        if did not in state.lines:
            return TextAnswer(f"ERR05: {did} is invalid or does not belong to you")
        state.lines.remove(did)
        state.disabled_lines.discard(did)
        state.available_dids.add(did)
        if did[:6] not in state.npanxx:
            state.npanxx[did[:6]] = ("Denver", "CO")
    return TextAnswer(f"{did} deprovisioned")
