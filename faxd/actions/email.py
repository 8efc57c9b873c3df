"""Deliver a fax by email through the configured SMTP server.

An email counts as delivered when the server accepts the message's DATA
(DESIGN invariant 1); the server's final answer (``250 2.0.0 Ok: queued as
...``) is what the ledger records, so an operator can find the message in the
mail server's log.  The SMTP conversation itself is :class:`faxd.smtp.SmtpSender`,
shared with the admin notifications.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from faxd.actions.base import MIME_TYPES, Deliverable
from faxd.config import EmailSpec, SmtpSettings
from faxd.errors import DeliveryError
from faxd.smtp import SmtpSender
from faxd.templates import one_line, render_text


class EmailAction:
    """Mail the fax to the route's recipients, the file attached unless told not to."""

    type = "email"

    def __init__(
        self,
        spec: EmailSpec,
        smtp: SmtpSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.spec = spec
        self.smtp = smtp
        self.sender = SmtpSender(smtp, ssl_context=ssl_context, local_hostname=local_hostname)

    @property
    def target(self) -> str:
        return f"email {', '.join(self.spec.to)}"

    def build_message(self, item: Deliverable) -> EmailMessage:
        """The message for ``item``: rendered subject and body, the fax attached."""
        fields = item.template_fields()
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = self.smtp.from_addr
        msg["To"] = ", ".join(self.spec.to)
        msg["Subject"] = one_line(render_text(self.spec.subject, fields))
        msg["Date"] = formatdate(localtime=True)
        domain = self.smtp.from_addr.rpartition("@")[2].strip("<> ") or "faxd.invalid"
        msg["Message-ID"] = make_msgid("faxd", domain=domain)
        msg["X-Faxd-Recvid"] = str(item.facts.recvid)
        body = render_text(self.spec.body, fields)
        msg.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
        if self.spec.attach:
            maintype, subtype = MIME_TYPES.get(item.ext, ("application", "octet-stream"))
            msg.add_attachment(
                item.path.read_bytes(),
                maintype=maintype,
                subtype=subtype,
                filename=f"fax-{item.facts.recvid}.{item.ext}",
            )
        return msg

    def deliver(self, item: Deliverable) -> str:
        """Send the message; return the server's answer to DATA."""
        try:
            msg = self.build_message(item)
        except OSError as exc:
            raise DeliveryError(
                f"cannot read the spool file {item.path} to attach it: {exc.strerror or exc}",
                transient=False,
            ) from exc
        except ValueError as exc:
            raise DeliveryError(
                f"cannot build the email for route {item.route!r}: {exc}", transient=False
            ) from exc
        return self.sender.send(msg, self.spec.to)
