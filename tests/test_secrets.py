"""DESIGN invariant 6 end to end: the FAXAGE and SMTP passwords never leave faxd.

Issue 11 adds the other providers' secrets (VoIP.ms API password, iFax access
token, faxnummer.de product code): the last test gives faxd all four, each from
a different source, and a hostile "provider" that echoes every request back
(query string, headers and body), then searches config loading, check-config,
the --online failures and the daemon's log lines for any of them.

The real daemon (`python -m faxd run --once`, JSON logs on stderr) runs several
times against the FAXAGE simulator while faults are injected in turn: ERR08
(which echoes the whole POST back, password and base64 file data included) on
listfax, getfax, delfax and sendfax, ERR02, HTTP 500, a truncated download, and
an SMTP server that refuses the first login.  Then every text faxd produced is
searched for either password in every form it could take on the way out: the
stdout and stderr (JSON logs) of every single run, kept in order, not only of the
last run of each command.
"""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from faxd.demo import DemoLayout, write_config
from faxd.sim import FaxageSimulator
from faxd.sim.documents import make_pdf

# Characters that URL-encoding and print_r treat differently, so each form is distinct.
FAXAGE_PASSWORD = "Xq7+faxage/SECRET=91&z"
SMTP_USER = "faxd"
SMTP_PASSWORD = "Yw3+smtp/SECRET=42"
SALES, SUPPORT = "3035550101", "3035550102"

ROUTES = f"""
[[routes]]
name = "sales"
dnis = ["{SALES}"]
actions = [{{ type = "folder", path = "faxes/sales/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "support"
dnis = ["{SUPPORT}"]
actions = [{{ type = "email", to = ["ops@example.com"], subject = "Fax {{recvid}} from {{cid}}" }}]

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "faxes/other/{{recvid}}.{{ext}}" }}]
"""


def leak_forms(secret: str, *, login: str | None = None) -> dict[str, bytes]:
    """Every spelling of ``secret`` that would give it away, by name."""
    raw = secret.encode()
    forms = {
        "plain": raw,
        "url-encoded": quote(secret, safe="").encode(),
        "form-encoded": quote_plus(secret).encode(),
        "html-escaped": html.escape(secret).encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "json-escaped": json.dumps(secret).strip('"').encode(),
    }
    if login is not None:  # SMTP AUTH PLAIN sends base64("\0login\0password")
        forms["auth-plain"] = base64.b64encode(b"\0" + login.encode() + b"\0" + raw).rstrip(b"=")
    return forms


LEAKS = {
    **{f"FAXAGE password ({k})": v for k, v in leak_forms(FAXAGE_PASSWORD).items()},
    **{f"SMTP password ({k})": v for k, v in leak_forms(SMTP_PASSWORD, login=SMTP_USER).items()},
}


def leaks_in(data: bytes | str, leaks: Mapping[str, bytes] = LEAKS) -> list[str]:
    """The names of the password forms found in ``data``, also where a line was wrapped."""
    blob = data.encode("utf-8", errors="replace") if isinstance(data, str) else data
    unwrapped = re.sub(rb"\s+", b"", blob)
    return [name for name, form in leaks.items() if form in blob or form in unwrapped]


@dataclass
class AuthSmtp:
    """An aiosmtpd server on loopback that wants AUTH; refuses every login while not ``open``."""

    open: bool = True
    logins: list[tuple[bytes, bytes, bool]] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        ok = (data.login, data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
        ok = ok and self.open
        self.logins.append((data.login, data.password, ok))
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        return f"250 2.0.0 Ok: queued as AUTH{len(self.messages)}"


@pytest.fixture
def secret_sim() -> Iterator[FaxageSimulator]:
    """The simulator with this module's distinctive FAXAGE password."""
    with FaxageSimulator("acme", "12345", FAXAGE_PASSWORD) as server:
        yield server


@pytest.fixture
def auth_smtp() -> Iterator[tuple[AuthSmtp, int]]:
    """An SMTP server with AUTH over plain text (allowed on loopback) and its port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    state = AuthSmtp()
    controller = Controller(
        state, hostname="127.0.0.1", port=port,
        authenticator=state.authenticate, auth_require_tls=False,
    )
    controller.start()
    try:
        yield state, port
    finally:
        controller.stop()


class Site:
    """One faxd installation: its config, and every text its commands printed."""

    def __init__(self, layout: DemoLayout, sim: FaxageSimulator, smtp_port: int) -> None:
        self.layout = layout
        smtp = (
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            f'username = "{SMTP_USER}"\npassword = "{SMTP_PASSWORD}"\n'
            'from = "faxd@example.com"\ntimeout = 10\n'
        )
        self.config = write_config(
            layout, base_url=sim.base_url, username=sim.username, company=sim.company,
            password=FAXAGE_PASSWORD, interval=1.0, routes=ROUTES + smtp,
        )
        # One entry per command run, in order: a command that runs twice is searched twice.
        self.outputs: list[tuple[str, str]] = []  # ("#3 run --once stderr", text)

    def faxd(self, *argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "faxd", *argv, "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        run = f"#{len(self.outputs) // 2 + 1} {' '.join(argv)}"
        self.outputs += [(f"{run} stdout", done.stdout), (f"{run} stderr", done.stderr)]
        return done

    def run_once(self) -> list[dict[str, Any]]:
        """One `faxd run --once`; its JSON log lines (every stderr line must be one)."""
        done = self.faxd("run", "--once")
        events = []
        for line in done.stderr.splitlines():
            if line.startswith("faxd: "):  # the one-line summary of a failed pass
                continue
            events.append(json.loads(line))
        return events

    def drop(self, name: str, title: str) -> None:
        self.layout.outbox.mkdir(parents=True, exist_ok=True)
        part = self.layout.outbox / (name + ".part")
        part.write_bytes(make_pdf(title, pagecount=1))
        part.rename(self.layout.outbox / name)

    def files(self) -> list[Path]:
        """Every file faxd wrote: database (+ -wal), spools, faxes, sent/ and failed/."""
        return [
            p for p in sorted(self.layout.root.rglob("*"))
            if p.is_file() and p != self.config and p.parent.name != "bin"
        ]


@pytest.mark.slow
def test_passwords_never_leave_through_logs_db_or_cli(
    secret_sim: FaxageSimulator, auth_smtp: tuple[AuthSmtp, int], tmp_path: Path
) -> None:
    """Under ERR08 echoes, ERR02, 5xx, truncation and a refused SMTP login, neither password
    appears in any log line, database byte, reason file, email or CLI output."""
    sim = secret_sim
    smtp, smtp_port = auth_smtp
    site = Site(DemoLayout(tmp_path / "site"), sim, smtp_port)
    faults = []
    logs: list[dict[str, Any]] = []

    # 1: ERR08 to listfax and to sendfax (whose echo holds the file's base64 too).
    sim.seed_inbound(2, dnis=(SALES,))
    sim.seed_inbound(1, dnis=(SUPPORT,))
    site.drop("3035551212 - Acme Corp.pdf", "first quote")
    faults += [sim.inject("err08", operation="listfax", times=1),
               sim.inject("err08", operation="sendfax", times=1)]
    logs += site.run_once()
    # 2: ERR08 to getfax and delfax; the SMTP server refuses the (right) login.
    faults += [sim.inject("err08", operation="getfax", times=1),
               sim.inject("err08", operation="delfax", times=1)]
    smtp.open = False
    logs += site.run_once()
    smtp.open = True
    # 3: ERR02 (login refused) stops the poller.
    faults.append(sim.inject("err02", operation="listfax", times=1))
    logs += site.run_once()
    # 4: HTTP 500 (retried) and a truncated download; a file that sends fine.
    sim.seed_inbound(1, dnis=(SALES,))
    sim.seed_inbound(1, dnis=(SUPPORT,))
    site.drop("3035559876 - Beta Ltd.pdf", "second quote")
    faults += [sim.inject("http500", operation="listfax", times=1),
               sim.inject("truncate", operation="getfax", times=1)]
    logs += site.run_once()
    # 5: the operator retries what failed; then a clean pass finishes it.
    retried = [row["remote_id"] for row in json.loads(site.faxd("inbox", "--json").stdout)
               if row["state"] == "failed"]
    for remote_id in retried:
        site.faxd("retry", remote_id)
    logs += site.run_once()
    faults.append(sim.inject("err08", operation="listlines", times=1))
    listlines = site.faxd("faxage", "listlines")
    for argv in (("status",), ("status", "--json"), ("inbox",), ("inbox", "--json"),
                 ("jobs",), ("jobs", "--json"), ("check-config",)):
        assert site.faxd(*argv).returncode == 0, site.outputs[-2:]

    # The faults really fired and faxd really met the ERR08 echo, so nothing passes vacuously.
    assert [f.fired for f in faults] == [1] * len(faults)
    logged = "\n".join(json.dumps(e) for e in logs)
    assert logged.count("ERR08") >= 4 and "ERR02" in logged
    assert listlines.returncode == 1 and "ERR08" in listlines.stderr
    reasons = sorted(site.layout.failed.glob("*.txt"))
    assert any("ERR08" in p.read_text() for p in reasons), reasons
    assert "refused the login" in logged  # faxd met the SMTP login refusal
    assert (SMTP_USER.encode(), SMTP_PASSWORD.encode(), True) in smtp.logins
    assert smtp.messages, "no email was delivered through the authenticated server"
    assert len(sim.jobs) == 1  # the second file was sent
    assert any(p.name.endswith("-wal") or p.suffix == ".db" for p in site.files())

    # Every run's own output (the ERR08, ERR02, 500 and truncation passes' logs included),
    # then the same logs as faxd's JSON decoded them, then every file and email.
    runs = [what for what, _ in site.outputs]
    assert len(set(runs)) == len(runs) == 2 * (5 + 1 + len(retried) + 1 + 7), runs
    found = {what: leaks_in(text) for what, text in site.outputs}
    found.update({f"log event {i}": leaks_in(json.dumps(e, ensure_ascii=False))
                  for i, e in enumerate(logs)})
    found.update({str(p): leaks_in(p.read_bytes()) for p in site.files()})
    found.update({f"email {i}": leaks_in(m) for i, m in enumerate(smtp.messages)})
    leaked = {where: names for where, names in found.items() if names}
    assert not leaked, "\n".join(f"{where}: {', '.join(names)}" for where, names in leaked.items())


# -- issue 11: every provider's secret -----------------------------------------------------------

VOIPMS_PASSWORD = "Vm5+voipms/SECRET=37&k"
IFAX_TOKEN = "If9-ifax_SECRET.token~58"
FAXNUMMER_CODE = "Fn2+faxnummer/SECRET=64"
DEFAULT_ROUTE = """
[[routes]]
name = "default"
actions = [{ type = "folder", path = "faxes/other/{recvid}.{ext}" }]
"""
PROVIDER_LEAKS = {
    **{f"FAXAGE password ({k})": v for k, v in leak_forms(FAXAGE_PASSWORD).items()},
    **{f"VoIP.ms password ({k})": v for k, v in leak_forms(VOIPMS_PASSWORD).items()},
    **{f"iFax token ({k})": v for k, v in leak_forms(IFAX_TOKEN).items()},
    **{f"faxnummer code ({k})": v for k, v in leak_forms(FAXNUMMER_CODE).items()},
}


class EchoHandler(BaseHTTPRequestHandler):
    """A hostile provider: every answer is the whole request it got, secrets and all."""

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        echo = f"{self.requestline}\n{self.headers}\n".encode() + body
        self.server.requests.append(echo)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(echo)))
        self.end_headers()
        self.wfile.write(echo)

    do_GET = do_POST = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_provider() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_every_providers_secret_stays_out_of_config_check_and_logs(
    secret_sim: FaxageSimulator, echo_provider: ThreadingHTTPServer, tmp_path: Path
) -> None:
    """All four providers' secrets, each from another source, never appear in config errors,
    check-config, check-config --online failures or any log line of `faxd run --once`."""
    from faxd.check_config import render_config
    from faxd.config import load_config
    from faxd.errors import ConfigError

    echo = f"http://127.0.0.1:{echo_provider.server_address[1]}"
    layout = DemoLayout(tmp_path / "site")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    voipms_file = secrets_dir / "voipms-api-password"
    voipms_file.write_text(VOIPMS_PASSWORD + "\n")
    voipms_file.chmod(0o600)
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "faxnummer-code").write_text(FAXNUMMER_CODE + "\n")
    providers = (
        'provider = "faxage"\n'
        f'[voipms]\nusername = "office@example.com"\npassword_file = "{voipms_file}"\n'
        f'base_url = "{echo}/api/v1/rest.php"\nfrom_number = "5552341234"\ntimeout = 5\n'
        f'[ifax]\nbase_url = "{echo}/v1"\ntimeout = 5\n'
        f'[faxnummer]\nproduct_login = "acc12345"\nbase_url = "{echo}/index.php"\n'
        'status_email = "fax@example.com"\ntimeout = 5\n'
    )
    config_path = write_config(
        layout, base_url=secret_sim.base_url, username=secret_sim.username,
        company=secret_sim.company, password=FAXAGE_PASSWORD, interval=1.0,
        routes=ROUTES.split("[[routes]]\nname = \"support\"")[0] + DEFAULT_ROUTE,
        extra=providers,
    )  # fmt: skip
    env = {
        "PATH": "/usr/bin:/bin",
        "FAXD_IFAX_TOKEN": IFAX_TOKEN,
        "CREDENTIALS_DIRECTORY": str(credentials),
    }
    outputs: list[tuple[str, str]] = []

    # Config loading: the settings, their repr, check-config, and a config error.
    config = load_config(config_path, env=env)
    assert (config.voipms and config.voipms.password) == VOIPMS_PASSWORD
    assert (config.ifax and config.ifax.access_token) == IFAX_TOKEN
    assert (config.faxnummer and config.faxnummer.product_code) == FAXNUMMER_CODE
    rendered = render_config(config)
    for where in (f"password_file {voipms_file}", "environment variable FAXD_IFAX_TOKEN",
                  "systemd credential faxnummer-code"):  # fmt: skip
        assert "".join(where.split()) in "".join(rendered.split())  # long paths are wrapped
    outputs += [("repr(config)", repr(config)), ("render_config", rendered)]
    voipms_file.chmod(0o644)
    with pytest.raises(ConfigError) as refused:
        load_config(config_path, env=env)
    voipms_file.chmod(0o600)
    assert "chmod 600" in str(refused.value)
    outputs.append(("config error", str(refused.value) + "\n".join(refused.value.problems)))

    def faxd(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "faxd", *argv, "--config", str(config_path)],
            capture_output=True, text=True, timeout=120, check=False, env=env,
        )  # fmt: skip
        outputs.extend([(f"{' '.join(argv)} stdout", done.stdout),
                        (f"{' '.join(argv)} stderr", done.stderr)])  # fmt: skip
        return done

    assert faxd("check-config").returncode == 0
    online = faxd("check-config", "--online")
    assert online.returncode == 1, online.stdout + online.stderr
    # The echo "provider" answers nonsense, so at least its three fail, each on its own line.
    verdicts = [line.strip().split(" — ")[0] for line in online.stdout.splitlines()
                if " — " in line]  # fmt: skip
    assert [v.split(":")[0] for v in verdicts] == ["faxage", "voipms", "ifax", "faxnummer"]
    assert verdicts[1:] == ["voipms: FAILED", "ifax: FAILED", "faxnummer: FAILED"]
    secret_sim.seed_inbound(1, dnis=(SALES,))
    secret_sim.inject("err08", operation="listfax", times=1)
    faxd("run", "--once")
    faxd("run", "--once")

    found = {what: leaks_in(text, PROVIDER_LEAKS) for what, text in outputs}
    leaked = {where: names for where, names in found.items() if names}
    assert not leaked, "\n".join(f"{where}: {', '.join(names)}" for where, names in leaked.items())
