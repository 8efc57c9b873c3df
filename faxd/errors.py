"""The one exception tree of faxd.

Retry decisions read the *type* of an error, never its message, so every
failure that crosses a module boundary is one of these::

    FaxdError
    ├── ConfigError                 the config file or a setting is wrong (exit 2)
    ├── ProviderError               talking to FAXAGE went wrong
    │   ├── TransientError          try again later: HTTP 5xx, timeouts, resets,
    │   │   │                       ERR01, ERR13, ERR15, ERR24
    │   │   └── DownloadError       a body failed its checks (short, wrong magic)
    │   ├── PermanentError          retrying the same request cannot help
    │   │   ├── NotFoundError       the fax / job / DID is not (or no longer) there
    │   │   └── TooLargeError       a download is bigger than the limit set for it
    │   ├── AuthError               ERR02: stop and tell the operator
    │   └── OutcomeUnknownError     a sendfax POST may have reached FAXAGE: reconcile,
    │                               never resend blindly (DESIGN invariant 5)
    ├── RoutingError                no route matches a fax and there is no default
    ├── DeliveryError               an action (folder, print, email, command) failed
    └── IntakeError                 a dropped file cannot become a job (the reason is
                                    the text of the `.txt` beside it in failed/)

Every message passes through :func:`faxd.redact.redact` when the exception is
built, so a secret can never ride out inside an exception's text or repr.
"""

from __future__ import annotations

from faxd.redact import redact


class FaxdError(Exception):
    """Root of every error faxd raises on purpose."""

    #: Whether waiting and trying the same thing again may succeed.
    transient: bool = False

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigError(FaxdError):
    """The configuration is invalid; the message names file, key and the fix."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = [redact(p) for p in (problems or [message])]
        super().__init__(message)


class ProviderError(FaxdError):
    """Something went wrong talking to the fax provider.

    ``operation`` is the API operation (``listfax``, ``getfax``...), ``code`` the
    provider's error code (``ERR01``) when it answered with one, else ``None``.
    """

    def __init__(self, message: str, *, operation: str = "", code: str | None = None) -> None:
        self.operation = operation
        self.code = code
        prefix = f"{operation}: " if operation and not message.startswith(operation) else ""
        super().__init__(prefix + message)


class TransientError(ProviderError):
    """A fault that may clear by itself; retry with backoff.

    ``sent`` is False only when the request certainly never reached the server
    (the connection was refused or never established), which is the one case in
    which a ``sendfax`` may be posted again without reconciling first.
    """

    transient = True
    sent: bool = True


class DownloadError(TransientError):
    """A downloaded body failed verification (length, magic, ERR body)."""


class PermanentError(ProviderError):
    """The request itself is wrong or refused; retrying cannot help."""


class NotFoundError(PermanentError):
    """The fax, job or number named in the request does not exist (any more)."""


class TooLargeError(PermanentError):
    """A download passed the byte limit set for it and was cut off there.

    Permanent for that download: the same file is as large on every try, so
    only raising the limit (and ``faxd retry``) can help.  ``limit`` is in bytes.
    """

    def __init__(self, message: str, *, limit: int, operation: str = "") -> None:
        self.limit = limit
        super().__init__(message, operation=operation)


class AuthError(ProviderError):
    """FAXAGE refused the credentials (ERR02). Stop and tell the operator."""


class OutcomeUnknownError(ProviderError):
    """A sendfax may or may not have been accepted; reconcile with `status`."""


class RoutingError(FaxdError):
    """No route matches the fax and no default route exists."""


class DeliveryError(FaxdError):
    """An action could not deliver a fax. ``transient`` says whether to retry."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        self.transient = transient
        super().__init__(message)


class IntakeError(FaxdError):
    """A file dropped in the outbox cannot be sent as it is.

    The message is one line a person can act on; it is written beside the file
    in the failed folder.
    """


class FileChangedError(FaxdError):
    """A file to send no longer holds the bytes faxd checked when it took it.

    Raised before a byte of the changed file is posted; the job fails with
    the message as its reason, because sending something other than what was
    checked (a half-written scan, a swapped-in secret) is worse than not sending.
    """
