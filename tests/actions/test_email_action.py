"""The email action against real SMTP servers (aiosmtpd on loopback)."""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from faxd.actions.base import Deliverable
from faxd.actions.email import EmailAction
from faxd.config import EmailSpec, SmtpSettings
from faxd.errors import DeliveryError

MakeItem = Callable[..., Deliverable]
PASSWORD = "smtp-Pa55-never-shown"


class Recorder:
    """An aiosmtpd handler that keeps messages and refuses chosen recipients."""

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.refuse = refuse or {}
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return f"250 2.0.0 Ok: queued as REC{len(self.messages)}"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"faxd",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def settings(host: str, port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "security": "none",
        "from_addr": "faxd@example.com",
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpSettings(**values)


def spec(**overrides: Any) -> EmailSpec:
    values: dict[str, Any] = {"to": ("sales@example.com", "boss@example.com")}
    values.update(overrides)
    return EmailSpec(**values)


def action(spec_: EmailSpec, smtp: SmtpSettings, **kwargs: Any) -> EmailAction:
    return EmailAction(spec_, smtp, local_hostname="faxd.test", **kwargs)


def attachments(msg: Message) -> list[Message]:
    return [part for part in msg.walk() if part.get_content_disposition() == "attachment"]


def test_mails_the_fax_with_headers_subject_and_attachment(
    smtp_server: Any, make_item: MakeItem
) -> None:
    """One message to every recipient: our headers, the rendered subject, the exact file."""
    item = make_item(recvid=4711, cid="3035550100", pages=3)
    mailer = action(
        spec(subject="Fax from {cid} ({pages} pages) on {route}"),
        settings(smtp_server.host, smtp_server.port),
    )

    detail = mailer.deliver(item)

    assert detail == "250 2.0.0 Ok: queued as FAXD1"
    [(mail_from, rcpt_tos, _raw)] = smtp_server.messages
    assert mail_from == "faxd@example.com"
    assert rcpt_tos == ["sales@example.com", "boss@example.com"]
    [msg] = smtp_server.parsed()
    assert msg["From"] == "faxd@example.com"
    assert msg["To"] == "sales@example.com, boss@example.com"
    assert msg["Subject"] == "Fax from 3035550100 (3 pages) on sales"
    assert msg["X-Faxd-Recvid"] == "4711"
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@example.com>")
    [attached] = attachments(msg)
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_filename() == "fax-4711.pdf"
    assert attached.get_payload(decode=True) == item.path.read_bytes()


def test_body_is_rendered_and_tiff_is_attached_as_image(
    smtp_server: Any, make_item: MakeItem
) -> None:
    """The body template gets the fax fields; a TIFF goes out as image/tiff named .tif."""
    item = make_item(recvid=12, kind="tiff", dnis="3035550101")
    mailer = action(
        spec(body="Fax {recvid} to {dnis}, {received:%d.%m.%Y}\n"),
        settings(smtp_server.host, smtp_server.port),
    )
    mailer.deliver(item)
    [msg] = smtp_server.parsed()
    body = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    assert body.get_payload(decode=True).splitlines() == [b"Fax 12 to 3035550101, 04.03.2024"]
    [attached] = attachments(msg)
    assert (attached.get_content_type(), attached.get_filename()) == ("image/tiff", "fax-12.tif")
    assert attached.get_payload(decode=True) == item.path.read_bytes()


def test_attach_false_sends_no_file(smtp_server: Any, make_item: MakeItem) -> None:
    """With attach = false the message carries no attachment."""
    mailer = action(spec(attach=False), settings(smtp_server.host, smtp_server.port))
    mailer.deliver(make_item())
    [msg] = smtp_server.parsed()
    assert attachments(msg) == []


def test_subject_stays_on_one_line(smtp_server: Any, make_item: MakeItem) -> None:
    """A value with line breaks cannot add header lines: the subject is folded to one line."""
    mailer = action(spec(subject="Fax on {route}"), settings(smtp_server.host, smtp_server.port))
    mailer.deliver(make_item(route="night\r\nBcc: victim@example.org"))
    [msg] = smtp_server.parsed()
    assert msg["Subject"] == "Fax on night Bcc: victim@example.org"
    assert msg["Bcc"] is None


def test_stopped_server_is_a_transient_error(smtp_server: Any, make_item: MakeItem) -> None:
    """A mail server that is down fails the delivery retryably."""
    smtp_server.stop()
    mailer = action(spec(), settings(smtp_server.host, smtp_server.port))
    with pytest.raises(DeliveryError, match="connection refused") as caught:
        mailer.deliver(make_item())
    assert caught.value.transient is True


def test_unused_port_is_a_transient_error(make_item: MakeItem) -> None:
    """Nothing listening on the configured port is a transient error naming host:port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mailer = action(spec(), settings("127.0.0.1", port))
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}") as caught:
        mailer.deliver(make_item())
    assert caught.value.transient is True


def test_starttls_required_but_not_offered_is_refused(
    smtp_server: Any, make_item: MakeItem
) -> None:
    """security = "starttls" never falls back to plain text; nothing is sent."""
    mailer = action(spec(), settings(smtp_server.host, smtp_server.port, security="starttls"))
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
        mailer.deliver(make_item())
    assert caught.value.transient is False
    assert smtp_server.messages == []


def test_starttls_and_login_deliver(start_smtp: Any, tls_files: Any, make_item: MakeItem) -> None:
    """Over STARTTLS with the right login the message is accepted."""
    recorder = Recorder()
    server = start_smtp(
        recorder,
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=check_login,
    )
    smtp = settings(
        server.hostname, server.port, security="starttls", username="faxd", password=PASSWORD
    )
    detail = action(spec(), smtp, ssl_context=tls_files.client_context()).deliver(make_item())
    assert detail == "250 2.0.0 Ok: queued as REC1"
    assert len(recorder.messages) == 1


def test_implicit_tls_delivers(start_smtp: Any, tls_files: Any, make_item: MakeItem) -> None:
    """security = "tls" talks TLS from the first byte (SMTPS) and delivers."""
    recorder = Recorder()
    server = start_smtp(recorder, ssl_context=tls_files.server_context())
    smtp = settings(server.hostname, server.port, security="tls")
    action(spec(), smtp, ssl_context=tls_files.client_context()).deliver(make_item())
    assert len(recorder.messages) == 1


def test_wrong_password_is_permanent_and_never_shown(
    start_smtp: Any, tls_files: Any, make_item: MakeItem
) -> None:
    """A refused login stops retries, names the user, and never prints the password."""
    server = start_smtp(
        Recorder(),
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=lambda *_args: AuthResult(success=False, handled=False),
    )
    smtp = settings(
        server.hostname, server.port, security="starttls", username="faxd", password=PASSWORD
    )
    with pytest.raises(DeliveryError, match="refused the login of 'faxd'") as caught:
        action(spec(), smtp, ssl_context=tls_files.client_context()).deliver(make_item())
    assert caught.value.transient is False
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


def test_login_on_a_server_without_auth_fails_without_the_password(
    smtp_server: Any, make_item: MakeItem
) -> None:
    """A username set for a server that offers no AUTH is a config error; password hidden."""
    smtp = settings(smtp_server.host, smtp_server.port, username="faxd", password=PASSWORD)
    with pytest.raises(DeliveryError) as caught:
        action(spec(), smtp).deliver(make_item())
    assert caught.value.transient is False
    assert PASSWORD not in str(caught.value)
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    ("answer", "transient"),
    [("550 5.1.1 <boss@example.com>: no such user", False), ("450 4.2.0 mailbox busy", True)],
)
def test_a_refused_recipient_stops_the_whole_message(
    start_smtp: Any, make_item: MakeItem, answer: str, transient: bool
) -> None:
    """If the server refuses one recipient nobody gets the message; 5xx is permanent."""
    recorder = Recorder(refuse={"boss@example.com": answer})
    server = start_smtp(recorder)
    mailer = action(spec(), settings(server.hostname, server.port))
    with pytest.raises(DeliveryError, match=r"boss@example\.com") as caught:
        mailer.deliver(make_item())
    assert caught.value.transient is transient
    assert recorder.messages == []


def test_target_lists_the_recipients() -> None:
    """The human description of the action lists where the mail goes."""
    mailer = action(spec(), settings("127.0.0.1", 25))
    assert (mailer.type, mailer.target) == ("email", "email sales@example.com, boss@example.com")
