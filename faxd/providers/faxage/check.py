"""``faxd check-config --online`` for FAXAGE: log in with a read that changes nothing.

An operator who has just written ``[faxage]`` wants to know now, not at the
first poll, whether FAXAGE takes the login.  ``listfax`` is the read: every
account that receives may call it, it changes nothing on the account (faxes are
only removed by ``delfax``), and its answer tells the operator something useful,
how many received faxes wait.  It is read in batches, so a long list costs no
memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faxd.errors import AuthError
from faxd.providers.faxage.client import FaxageClient

if TYPE_CHECKING:
    from faxd.config import Config, FaxageSettings


class FaxageLoginCheck:
    """One authenticated, read-only FAXAGE call, described in a line."""

    def __init__(self, settings: FaxageSettings, client: FaxageClient) -> None:
        self.settings = settings
        self.client = client

    def check_login(self) -> str:
        """``"login accepted; N received faxes waiting"``; AuthError says what to fix."""
        settings = self.settings
        try:
            waiting = sum(len(batch.records) for batch in self.client.listfax_batches())
        except AuthError as exc:
            raise AuthError(
                f"FAXAGE refused the login for user {settings.username!r} company "
                f"{settings.company!r}: check username and company in [faxage] and the "
                f"password (from {settings.password_source or 'the config'}); they are "
                "your FAXAGE API login, not the web portal's",
                code=exc.code,
            ) from exc
        finally:
            self.client.close()
        return (
            f"login accepted for {settings.account}; "
            f"{waiting} received fax{'es' if waiting != 1 else ''} waiting on FAXAGE"
        )


def make_checker(config: Config) -> FaxageLoginCheck:
    """The check for the configured ``[faxage]`` account (one retry: a person is waiting)."""
    settings = config.require_faxage("checking the FAXAGE login")
    client = FaxageClient(
        settings.username,
        settings.company,
        settings.password,
        base_url=settings.base_url,
        timeout=settings.timeout,
        retries=1,
    )
    return FaxageLoginCheck(settings, client)
