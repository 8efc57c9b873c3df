"""Talk SMTP to the configured server: one message, all recipients or none.

Both the email action (a fax to its route's recipients) and the admin
notifications send through here, so TLS, login and the error translation are
written once.  A message counts as sent when the server accepts its DATA; the
server's final answer (``250 2.0.0 Ok: queued as ...``) is returned so callers
can record it.  The envelope is sent step by step (MAIL, RCPT, DATA) rather
than with ``sendmail()`` so that a recipient the server refuses stops the
message before anyone receives it: a retry then cannot duplicate it for the
recipients that were accepted.

Errors never carry the SMTP password: faxd never puts it in a message, and
:class:`~faxd.errors.DeliveryError` redacts registered secrets as well.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

from faxd.config import SmtpSettings
from faxd.errors import ConfigError, DeliveryError
from faxd.redact import register_secret
from faxd.templates import one_line

SECURITY_MODES = ("none", "starttls", "tls")


class SmtpSender:
    """Sends messages through ``[smtp]``; each :meth:`send` is one connection."""

    def __init__(
        self,
        smtp: SmtpSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if smtp.security not in SECURITY_MODES:
            raise ConfigError(
                f"[smtp] security must be one of {', '.join(SECURITY_MODES)}, not {smtp.security!r}"
            )
        self.smtp = smtp
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname
        register_secret(smtp.password)

    @property
    def server(self) -> str:
        """``host:port`` of the SMTP server, for messages."""
        return f"{self.smtp.host}:{self.smtp.port}"

    def send(self, msg: EmailMessage, to: Sequence[str]) -> str:
        """Send ``msg`` to ``to``; return the server's answer to DATA.

        Raises :class:`~faxd.errors.DeliveryError` (transient or not, as the
        server's answer says) when the message was not accepted.
        """
        data = msg.as_bytes()
        try:
            conn = self._connect()
            try:
                self._secure_and_login(conn)
                return self._transmit(conn, data, to)
            finally:
                _close_quietly(conn)
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"the SMTP server {self.server} refused the login of {self.smtp.username!r} "
                f"({exc.smtp_code}); check [smtp] username and password",
                transient=False,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"the SMTP server {self.server} does not support what [smtp] asks for "
                f"({exc}); check [smtp] security and username",
                transient=False,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"the SMTP server {self.server} answered {_describe(exc)}",
                transient=exc.smtp_code < 500,
            ) from exc
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise DeliveryError(
                f"cannot send email through {self.server}: {_describe(exc)}", transient=True
            ) from exc

    def _connect(self) -> smtplib.SMTP:
        if self.smtp.security == "tls":
            return smtplib.SMTP_SSL(
                self.smtp.host,
                self.smtp.port,
                local_hostname=self.local_hostname,
                timeout=self.smtp.timeout,
                context=self.ssl_context or ssl.create_default_context(),
            )
        return smtplib.SMTP(
            self.smtp.host,
            self.smtp.port,
            local_hostname=self.local_hostname,
            timeout=self.smtp.timeout,
        )

    def _secure_and_login(self, conn: smtplib.SMTP) -> None:
        conn.ehlo()
        if self.smtp.security == "starttls":
            if not conn.has_extn("starttls"):
                raise DeliveryError(
                    f"the SMTP server {self.server} does not offer STARTTLS, which [smtp] "
                    'security = "starttls" requires; enable TLS on the server or choose '
                    'security = "tls" (port 465) or "none"',
                    transient=False,
                )
            conn.starttls(context=self.ssl_context or ssl.create_default_context())
            conn.ehlo()
        if self.smtp.username:
            conn.login(self.smtp.username, self.smtp.password or "")

    def _transmit(self, conn: smtplib.SMTP, data: bytes, to: Sequence[str]) -> str:
        code, answer = conn.mail(self.smtp.from_addr)
        if code != 250:
            raise _refused(f"the sender {self.smtp.from_addr!r}", code, answer, self.server)
        refused: dict[str, tuple[int, bytes]] = {}
        for rcpt in to:
            code, answer = conn.rcpt(rcpt)
            if code not in (250, 251):
                refused[rcpt] = (code, answer)
        if refused:
            _reset_quietly(conn)
            names = ", ".join(
                f"{rcpt} ({code} {_text(answer)})" for rcpt, (code, answer) in refused.items()
            )
            # A 5xx refusal will not change by retrying; the config has to.
            permanent = any(code >= 500 for code, _answer in refused.values())
            raise DeliveryError(
                f"the SMTP server {self.server} refused recipient(s) {names}; nothing was "
                "sent" + ("; fix the list of recipients (`to`)" if permanent else ""),
                transient=not permanent,
            )
        code, answer = conn.data(data)
        if code != 250:
            raise _refused("the message", code, answer, self.server)
        return f"{code} {_text(answer)}"


def _reset_quietly(conn: smtplib.SMTP) -> None:
    """Abandon the transaction (RSET); the refusal is what gets reported."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        conn.rset()


def _close_quietly(conn: smtplib.SMTP) -> None:
    """QUIT and close; once DATA was accepted a failing QUIT must not undo success."""
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        conn.close()


def _refused(what: str, code: int, answer: bytes, server: str) -> DeliveryError:
    return DeliveryError(
        f"the SMTP server {server} refused {what}: {code} {_text(answer)}",
        transient=code < 500,
    )


def _text(answer: bytes | str) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
    return one_line(text)[:300]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the mail server running?)"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return one_line(str(exc))[:300] or type(exc).__name__
