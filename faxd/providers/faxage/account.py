"""FAXAGE's account operations: the numbers on the account, CDRs, provisioning.

Inbound and outbound fax flows never call these; ``faxd faxage ...`` does.
They are a mixin of :class:`faxd.providers.faxage.client.FaxageClient` so the client
module keeps to the fax operations and its retry policy, while callers still
see one client with one method per FAXAGE operation.

The list operations return the whole :class:`~faxd.providers.faxage.records.ListAnswer`:
a line FAXAGE sends that cannot be read is in its ``malformed`` beside the
items that could, for the command line to show, instead of failing the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from faxd.errors import PermanentError
from faxd.phone import nanp_number
from faxd.providers.faxage import wire
from faxd.providers.faxage.notices import Notices
from faxd.providers.faxage.records import CdrRecord, ListAnswer, NpaNxx

__all__ = ["FAX_PATH", "AccountOperations", "Timestamp", "normalize_did"]

FAX_PATH = "httpsfax.php"
CDR_PATH = "getcdr.php"
PROVISION_PATH = "provision.php"

Timestamp = datetime | str | None
_T = TypeVar("_T")


def normalize_did(did: str, operation: str) -> str:
    """``did`` as the 10 digits FAXAGE wants, or a PermanentError saying how to write it."""
    try:
        return nanp_number(did)
    except ValueError as exc:
        raise PermanentError(str(exc), operation=operation) from None


class AccountOperations:
    """disabledid, enabledid, portable, listlines, getcdr and provision.php."""

    notices: Notices

    def _text(
        self, operation: str, fields: dict[str, wire.FormValue], *, path: str = FAX_PATH
    ) -> str:
        """POST ``fields`` for ``operation`` and return the answer (the client implements it)."""
        raise NotImplementedError

    def _answer(self, answer: ListAnswer[_T]) -> ListAnswer[_T]:
        """The answer, after logging (once) any new column it carried."""
        self.notices.report_shapes(answer.shapes)
        return answer

    def disabledid(self, did: str) -> None:
        """Busy out ``did`` so no fax can come in on it."""
        number = normalize_did(did, "disabledid")
        wire.parse_disabled(self._text("disabledid", {"didnumber": number}), number)

    def enabledid(self, did: str) -> None:
        """Let faxes come in on ``did`` again."""
        number = normalize_did(did, "enabledid")
        wire.parse_enabled(self._text("enabledid", {"didnumber": number}), number)

    def portable(self, did: str) -> bool:
        """Whether ``did`` lies in a rate center FAXAGE serves."""
        number = normalize_did(did, "portable")
        return wire.parse_portable(self._text("portable", {"didnumber": number}))

    def listlines(self) -> ListAnswer[str]:
        """The numbers on this account."""
        return self._answer(wire.parse_number_list(self._text("listlines", {}), "listlines"))

    def getcdr(
        self,
        *,
        begin: Timestamp = None,
        end: Timestamp = None,
        nuidgt: int | None = None,
        nuidshow: bool = False,
        didnumber: str | None = None,
    ) -> ListAnswer[CdrRecord]:
        """Call detail records between ``begin`` and ``end``, or after ``nuidgt``."""
        if nuidgt is None and (begin is None or end is None):
            raise PermanentError(
                "getcdr needs both begin and end, or nuidgt (FAXAGE returns nothing otherwise)",
                operation="getcdr",
            )
        fields: dict[str, wire.FormValue] = {
            "begin": begin,
            "end": end,
            "nuidshow": nuidshow,
            "nuidgt": nuidgt,
            "didnumber": normalize_did(didnumber, "getcdr") if didnumber else None,
        }
        text = self._text("getcdr", fields, path=CDR_PATH)
        return self._answer(wire.parse_cdr(text, nuidshow=nuidshow))

    def listac(self) -> ListAnswer[str]:
        """Area codes with numbers available to provision."""
        return self._answer(wire.parse_listac(self._text("listac", {}, path=PROVISION_PATH)))

    def listnpanxx(self, ac: str | None = None) -> ListAnswer[NpaNxx]:
        """Localities (NPANXX) with numbers available, optionally in area code ``ac``."""
        text = self._text("listnpanxx", {"ac": ac}, path=PROVISION_PATH)
        return self._answer(wire.parse_listnpanxx(text))

    def listdids(self, ac: str | None = None, npanxx: str | None = None) -> ListAnswer[str]:
        """Numbers available to provision (``npanxx`` wins over ``ac``)."""
        text = self._text("listdids", {"ac": ac, "npanxx": npanxx}, path=PROVISION_PATH)
        return self._answer(wire.parse_number_list(text, "listdids"))

    def provdid(self, did: str) -> None:
        """Add ``did`` to this account."""
        number = normalize_did(did, "provdid")
        text = self._text("provdid", {"didnumber": number}, path=PROVISION_PATH)
        wire.parse_provisioned(text, number)

    def deprovdid(self, did: str) -> None:
        """Remove ``did`` from this account."""
        number = normalize_did(did, "deprovdid")
        text = self._text("deprovdid", {"didnumber": number}, path=PROVISION_PATH)
        wire.parse_deprovisioned(text, number)
