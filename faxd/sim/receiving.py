"""The receiving operations of httpsfax.php: listfax, getfax, delfax.

Answers follow the FAXAGE documents: listfax records are
``<recvid>\\t<recvdate>[\\t<starttime>]\\t<CID>\\t<DNIS>[\\t<filename>][\\t<pagecount>]``
one per line (plus ``extra_columns`` trailing ones, as FAXAGE adds fields over
the years), ``ERR11`` when there is nothing; getfax is the file itself;
delfax is ``<faxid> Deleted``.  A deleted fax is gone from listfax and getfax.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from faxd.phone import digits
from faxd.sim.forms import Form
from faxd.sim.models import (
    TIME_FORMAT,
    Answer,
    FileAnswer,
    SimFax,
    TextAnswer,
    extra_values,
    format_time,
)
from faxd.sim.state import SimState, display_number

log = structlog.get_logger(__name__)


def parse_int(text: str) -> int | None:
    """A non-negative integer field, ``None`` when absent or not a number."""
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_time(text: str) -> datetime | None:
    """A ``YYYY-MM-DD HH:MM:SS`` field, ``None`` when absent or malformed."""
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT)
    except ValueError:
        return None


def listfax(state: SimState, form: Form) -> Answer:
    """List the inbox, honouring idgt, begin, didnumber, idasc and the column flags."""
    idgt = parse_int(form.text("idgt"))
    begin = parse_time(form.text("begin"))
    didnumber = digits(form.text("didnumber"))
    with state.lock:
        faxes = [fax for fax in state.faxes.values() if not fax.deleted]
    if idgt is not None:
        faxes = [fax for fax in faxes if fax.recvid > idgt]
    if begin is not None:
        faxes = [fax for fax in faxes if fax.recvdate > begin]
    if form.text("didnumber"):
        faxes = [fax for fax in faxes if fax.dnis == didnumber]
    if form.flag("idasc"):
        faxes.sort(key=lambda fax: fax.recvid)
    else:
        # By receiving number, then newest first (recvid breaks ties).
        faxes.sort(key=lambda fax: fax.recvid, reverse=True)
        faxes.sort(key=lambda fax: fax.recvdate, reverse=True)
        faxes.sort(key=lambda fax: fax.dnis)
    if not faxes:
        return TextAnswer("ERR11: No incoming faxes available")
    starttime, filename, pagecount = (form.flag(n) for n in ("starttime", "filename", "pagecount"))
    extra = state.extra_columns
    return TextAnswer(
        "".join(_record(f, starttime, filename, pagecount, extra) + "\n" for f in faxes)
    )


def _record(fax: SimFax, starttime: bool, filename: bool, pagecount: bool, extra: int) -> str:
    fields = [str(fax.recvid), format_time(fax.recvdate)]
    if starttime:
        fields.append(format_time(fax.starttime))
    fields += [display_number(fax.cid), display_number(fax.dnis)]
    if filename:
        fields.append(fax.filename)
    if pagecount:
        fields.append(str(fax.pagecount))
    fields += extra_values(extra)
    return "\t".join(fields)


def getfax(state: SimState, form: Form) -> Answer:
    """Serve a fax's file as an attachment, or ``ERR12`` for an unknown or deleted id."""
    faxid = form.text("faxid")
    recvid = parse_int(faxid)
    fax = state.live_fax(recvid) if recvid is not None else None
    if fax is None:
        return TextAnswer(f"ERR12: FAX ID {faxid} not found or does not belong to you")
    with state.lock:
        fax.getfax_count += 1
    return FileAnswer(fax.filename, fax.data, fax.data_path)


def delfax(state: SimState, form: Form) -> Answer:
    """Delete a fax (``<faxid> Deleted``), running ``delete_check`` on it first."""
    faxid = form.text("faxid")
    recvid = parse_int(faxid)
    with state.lock:
        fax = state.live_fax(recvid) if recvid is not None else None
        if fax is None:
            return TextAnswer(f"ERR14: FAX ID {faxid} not found or does not belong to you")
        fax.deleted = True
        fax.deleted_at = state.now()
        check = state.delete_check
    if check is not None:
        try:
            violation = check(fax)
        except Exception as exc:  # a broken check is itself a finding, not a server crash
            violation = f"delete_check raised {type(exc).__name__}: {exc}"
        if violation:
            log.warning("sim.delete_violation", recvid=fax.recvid, violation=violation)
            with state.lock:
                state.violations.append(violation)
    return TextAnswer(f"{fax.recvid} Deleted")
