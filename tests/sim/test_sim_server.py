"""The simulator as a server: lifecycle, unknown paths, concurrency, the standalone command."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from simapi import Api

from faxd.sim import FaxageSimulator


def test_base_url_and_repr_hide_password() -> None:
    """base_url is http://127.0.0.1:<port> and the repr never shows the password."""
    with FaxageSimulator("u", "1", "very-secret-pw") as sim:
        assert sim.base_url == f"http://127.0.0.1:{sim.port}" and sim.port > 0
        assert "very-secret-pw" not in repr(sim)
    assert sim.port > 0


def test_stop_closes_the_port() -> None:
    """After stop() nothing listens on the port any more."""
    sim = FaxageSimulator().start()
    port = sim.port
    sim.stop()
    sim.stop()  # idempotent
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_unknown_path_is_404(sim: FaxageSimulator, api: Api) -> None:
    """Paths other than the three documented endpoints are 404."""
    assert api.raw("/nothing.php", api.login()).status_code == 404
    assert requests.get(sim.base_url + "/", timeout=5).status_code == 200


def test_keep_alive_session_reuses_connection(sim: FaxageSimulator, api: Api) -> None:
    """HTTP/1.1 keep-alive: many calls on one session all answer."""
    sim.seed_inbound(2)
    for _ in range(20):
        assert api.text("listfax").count("\n") == 2


def test_concurrent_sendfax_is_thread_safe(sim: FaxageSimulator) -> None:
    """Parallel sendfax POSTs each get their own jobid and are all counted."""
    data = base64.b64encode(b"%PDF-1.4 hello").decode()

    def send(i: int) -> str:
        with requests.Session() as session:
            api = Api(sim, session)
            files = (("faxfilenames[]", f"f{i}.pdf"), ("faxfiledata[]", data))
            return api.text("sendfax", *files, faxno="3035550199", recipname=f"R{i}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(40)))
    jobids = {int(answer.split()[1]) for answer in answers}
    assert len(jobids) == 40 and set(sim.jobs) == jobids
    assert sim.sendfax_posts == 40 and len(sim.requests) == 40


def test_concurrent_delfax_deletes_once(sim: FaxageSimulator) -> None:
    """Racing delfax calls for one fax: exactly one 'Deleted', the rest ERR14."""
    (fax,) = sim.seed_inbound(1)

    def delete(_i: int) -> str:
        with requests.Session() as session:
            return Api(sim, session).text("delfax", faxid=str(fax.recvid))

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(delete, range(12)))
    assert answers.count(f"{fax.recvid} Deleted") == 1
    assert sum(a.startswith("ERR14") for a in answers) == 11


def test_standalone_command_serves_and_stops() -> None:
    """`python -m faxd.sim` listens, answers a real POST (with its wire options), exits on TERM."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "faxd.sim", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--seed", "12", "--username", "demo", "--company", "12345"]
    argv += ["--password", "demo-password", "--status-order", "2009", "--extra-columns", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner and "demo-password" not in banner
        form = {"username": "demo", "company": "12345", "password": "demo-password"}
        url = f"http://127.0.0.1:{port}/httpsfax.php"
        answer = requests.post(url, data={**form, "operation": "listfax"}, timeout=5)
        assert len(answer.text.splitlines()) == 3
        assert all(line.endswith("\textra1") for line in answer.text.splitlines())
    finally:
        proc.terminate()
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
    out, _err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "stopped" in out


def test_standalone_port_in_use_explains() -> None:
    """A busy port gives a message naming the address and what to do, exit status 1."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "faxd.sim", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_stop_cuts_keep_alive_connections() -> None:
    """A pooled keep-alive connection gets no answer once the simulator is stopped."""
    sim = FaxageSimulator().start()
    with requests.Session() as session:
        api = Api(sim, session)
        assert api.text("listlines").startswith("3035550101")
        sim.stop()
        with pytest.raises(requests.ConnectionError):
            api.call("listlines")


def test_missing_operation_is_err08(sim: FaxageSimulator, api: Api) -> None:
    """A POST without an operation is ERR08 with the POST echoed."""
    answer = api.raw("/httpsfax.php", api.login()).text
    assert answer.startswith("ERR08: Unknown operation specified or bad POST Array\n")
