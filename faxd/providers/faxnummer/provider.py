"""faxnummer.de behind faxd's provider interface: the outbound half only.

faxnummer.de's API has two functions, SendFax and GetSentFaxStatus: nothing to
receive, list, cancel or look up a lost send with.  So there is no
``make_inbound`` (:mod:`faxd.providers.registry` knows it cannot receive),
:class:`Capabilities` says ``reconcile=False`` and ``cancel=False``, and the
outbound half raises a :class:`~faxd.errors.PermanentError` that says so if
policy asks for either anyway.  The only type it sends is PDF; the outbound
core converts the rest (:mod:`faxd.outbound.convert`) before it gets here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from faxd.errors import ConfigError, NotFoundError, PermanentError
from faxd.providers.base import Capabilities, JobStatus, SendRequest, StatusAnswer
from faxd.providers.faxnummer.client import FaxnummerClient

if TYPE_CHECKING:
    from faxd.config import Config
    from faxd.config.model import FaxnummerSettings

__all__ = [
    "CAPABILITIES",
    "FaxnummerChecker",
    "FaxnummerOutbound",
    "configured",
    "make_checker",
    "make_outbound",
]

NAME = "faxnummer"
CAPABILITIES = Capabilities(
    receive=False,
    send=True,
    send_types=frozenset({"pdf"}),
    send_returns_id=True,
    reconcile=False,
    cancel=False,
)
#: The job id the online check asks about: no real WR_Request_UUID looks like it.
CHECK_UUID = "faxd-login-check-no-such-job"


def configured(config: Config) -> bool:
    """Whether ``[faxnummer]`` is in the config file."""
    return getattr(config, NAME, None) is not None


def _settings(config: Config) -> FaxnummerSettings:
    settings: FaxnummerSettings | None = getattr(config, NAME, None)
    if settings is None:
        raise ConfigError("faxnummer.de is not configured: add a [faxnummer] section")
    return settings


class FaxnummerOutbound:
    """Send a PDF and follow it by its WR_Request_UUID."""

    name = NAME
    capabilities = CAPABILITIES

    def __init__(self, client: FaxnummerClient) -> None:
        self.client = client
        self.account = client.settings.account

    def __repr__(self) -> str:
        return f"FaxnummerOutbound({self.client!r})"

    def send(self, request: SendRequest) -> str:
        return self.client.send_fax(
            request.path,
            destination=request.number,
            size=request.size,
            sha256=request.sha256,
            reference=f"faxd job {request.job_id}: {request.filename}",
        )

    def statuses(self, remote_ids: Sequence[str]) -> StatusAnswer:
        """One GetSentFaxStatus per job (it takes one id); jobs it does not know are left out."""
        jobs: list[JobStatus] = []
        for remote_id in remote_ids:
            try:
                jobs.append(self.client.status(remote_id))
            except NotFoundError:
                continue
        return StatusAnswer(tuple(jobs))

    def recent_jobs(self, since: datetime) -> StatusAnswer:
        raise PermanentError(
            "faxnummer.de has no function that lists sent faxes, so a send whose answer was "
            "lost cannot be looked up: check the faxnummer.de customer centre before sending "
            "it again",
            operation="recent_jobs",
        )

    def cancel(self, remote_id: str) -> None:
        raise PermanentError(
            "faxnummer.de has no function to cancel a fax; it goes out within about a minute",
            operation="cancel",
        )

    def forget(self, remote_id: str) -> None:
        """Nothing to tidy: faxnummer.de keeps no list faxd could clear."""


class FaxnummerChecker:
    """``check-config --online`` for faxnummer.de, which has no read-only call.

    The least harmful authenticated call is GetSentFaxStatus for a job id that
    cannot exist: it sends nothing and costs nothing.  A wrong login or product
    code raises :class:`~faxd.errors.AuthError`; any other answer means the
    login was not refused, which is all this can show.
    """

    def __init__(self, client: FaxnummerClient) -> None:
        self.client = client

    def check_login(self) -> str:
        try:
            job = self.client.status(CHECK_UUID)
        except PermanentError as exc:  # AuthError is not a PermanentError: it propagates
            said = exc.message.split("answered ", 1)[-1][:100]
        else:
            said = f"status {job.status}"
        return (
            f"login {self.client.settings.product_login} not refused; faxnummer.de has no "
            "read-only call, so faxd asked the status of a job that does not exist and "
            f"got: {said}"
        )


def _client(config: Config, kw: dict[str, Any]) -> FaxnummerClient:
    known = {key: kw[key] for key in ("retries", "backoff", "sleep", "notices") if key in kw}
    return FaxnummerClient(_settings(config), **known)


def make_outbound(config: Config, **kw: Any) -> FaxnummerOutbound:
    """The outbound half; ``retries``, ``backoff``, ``sleep`` and ``notices`` are optional."""
    return FaxnummerOutbound(_client(config, kw))


def make_checker(config: Config) -> FaxnummerChecker:
    """What ``faxd check-config --online`` calls; one try, no retries."""
    return FaxnummerChecker(FaxnummerClient(_settings(config), retries=0))
