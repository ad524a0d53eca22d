"""`partnermesh up` as a user runs it: the whole mesh starts, answers, and stops clean."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from contracts.bus import inbox_prefix

pytestmark = pytest.mark.slow
SERVICES = ("profile", "matching", "collaboration", "connector")


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention ``path`` (our var dir) in their environment."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in environ or str(path).encode() in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def offset_with_free_ports() -> int:
    """A port offset under which every default port of the launcher is free.

    The ports stay between 10000 and 32000, below the kernel's ephemeral range, where
    every ``bind(0)`` of a parallel test worker lands: a port free now stays free."""
    from deploy.launcher import Ports

    for _ in range(50):
        offset = random.randrange(6000, 22700)  # 4223 + 6000 … 9203 + 22700
        ports = Ports().offset(offset)
        try:
            for p in ports.all().values():
                import socket

                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return offset
        except OSError:
            continue
    raise RuntimeError("no free port range")


def start_up(var: Path, offset: int) -> tuple[subprocess.Popen[str], str]:
    """``partnermesh up`` in a subprocess; returns it with its output up to "Press Ctrl-C"."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "up", "--var", str(var), "--port-offset", str(offset)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Press Ctrl-C" in line:
            break
    return proc, "".join(output)


Launched = tuple[subprocess.Popen[str], Path, str, Path]
"""The launcher's process, its var dir, its output up to "Press Ctrl-C", its mesh.json."""


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Launched]:
    """The mesh started by the launcher in a subprocess, with its own var dir and ports."""
    var = tmp_path / "var"
    offset = offset_with_free_ports()
    proc, output = start_up(var, offset)
    info_path = var / "mesh.json"
    yield proc, var, output, info_path
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


class TestLauncher:
    def test_up_answers_and_stops_clean(self, mesh: Launched) -> None:
        proc, var, output, info_path = mesh
        assert info_path.exists(), f"launcher did not come up:\n{output}"
        info = json.loads(info_path.read_text())
        assert "partnermesh is up in" in output
        # The printed token works against the gateway, through NATS, into a service.
        reply = httpx.get(
            f"{info['gateway']}/v1/ecosystems/{info['ecosystem']}/echo",
            params={"message": "hello"},
            headers={"Authorization": f"Bearer {info['example_token']}"},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["message"] == "hello"
        # The printed curl example, run as a user would paste it, returns seeded data.
        pasted = subprocess.run(
            ["bash", "-c", info["curl"]], capture_output=True, text=True, timeout=30
        )
        assert pasted.returncode == 0, pasted.stderr
        found = json.loads(pasted.stdout)
        assert found["total"] >= 1 and found["entries"], pasted.stdout
        # Without a token the gateway refuses, as RFC 9457 problem+json.
        denied = httpx.get(f"{info['gateway']}/v1/ecosystems/{info['ecosystem']}/echo")
        assert denied.status_code == 401
        assert denied.headers["content-type"].startswith("application/problem+json")
        # The gateway's metrics are on its printed operations port, not on the public one.
        assert info["gateway_metrics"] in output
        assert "pm_http_requests_total" in httpx.get(info["gateway_metrics"]).text
        assert httpx.get(f"{info['gateway']}/metrics").status_code == 404

        async def ping_all() -> set[str]:
            # The bus admits only the processes' own keys: the operators' one may ask $SRV.
            ops = var / "nats" / "creds" / "ops.nk"
            assert ops.stat().st_mode & 0o777 == 0o600
            with pytest.raises(nats.errors.Error, match=r"(?i)authorization violation"):
                await nats.connect(info["nats"], allow_reconnect=False, max_reconnect_attempts=0)
            nc = await nats.connect(
                info["nats"], nkeys_seed=str(ops), inbox_prefix=inbox_prefix("ops")
            )
            names: set[str] = set()
            for service in SERVICES:
                msg = await nc.request(f"$SRV.PING.{service}", b"", timeout=2)
                names.add(json.loads(msg.data)["name"])
            await nc.close()
            return names

        import asyncio

        assert asyncio.run(ping_all()) == set(SERVICES)

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "no process left running" in rest
        time.sleep(0.5)
        assert processes_using(var) == []

    def test_taken_port_is_named(self, tmp_path: Path) -> None:
        import socket

        offset = offset_with_free_ports()
        from deploy.launcher import Ports

        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", Ports().offset(offset).gateway))
            blocker.listen()
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "deploy.cli",
                    "up",
                    "--var",
                    str(tmp_path / "var"),
                    "--port-offset",
                    str(offset),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert result.returncode == 1
        assert f"gateway ({Ports().offset(offset).gateway})" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def sign_in_to_portal(info: dict[str, Any], username: str) -> str:
    """Sign in to the portal through identity's login page; returns the portal's home page."""
    from urllib.parse import urljoin

    from tests.portal.login import form_of

    with httpx.Client(base_url=info["portal"], follow_redirects=True, timeout=15) as browser:
        page = browser.get("/auth/login")
        assert page.status_code == 200, page.text[:300]
        assert str(page.url).startswith(info["identity"]), page.url
        action, fields = form_of(page.text)
        page = browser.post(
            urljoin(str(page.url), action),
            data={**fields, "username": username, "password": info["people"][username]["password"]},
        )
        assert str(page.url).startswith(info["portal"]), page.url
        assert page.status_code == 200, page.text[:300]
        return page.text


def run_demo(info: dict[str, Any], name: str) -> dict[str, Any]:
    """One of the demo commands printed at start-up, pasted into bash; its JSON reply."""
    pasted = subprocess.run(
        ["bash", "-c", info["demo"][name]], capture_output=True, text=True, timeout=30
    )
    assert pasted.returncode == 0, pasted.stderr
    reply: dict[str, Any] = json.loads(pasted.stdout)
    return reply


def person_token(info: dict[str, Any], username: str) -> str:
    """An access token of a demo person, through the real login pages."""
    from identity.cli.devclient import login

    async def work() -> str:
        async with httpx.AsyncClient(timeout=15) as http:
            result = await login(
                http,
                info["issuer"],
                "mesh-cli",
                username,
                info["people"][username]["password"],
                "http://127.0.0.1:8099/callback",
                "openid connector:admin connector:read connector:invoke admin",
            )
        return str(result["access_token"])

    import asyncio

    return asyncio.run(work())


class TestPortOffset:
    def test_sign_in_demo_journeys_and_an_immediate_restart(self, mesh: Launched) -> None:
        proc, var, output, info_path = mesh
        assert info_path.exists(), f"launcher did not come up:\n{output}"
        info = json.loads(info_path.read_text())
        offset = int(info["portal"].rsplit(":", 1)[1]) - 8082
        assert offset != 0
        assert info["issuer"] == f"http://127.0.0.1:{8081 + offset}/eco/acme"
        # The portal signs people in on the moved port (its redirect URI follows the offset).
        assert "Hello, Nadia Novak" in sign_in_to_portal(info, "nadia")
        # The demo's own examples, as printed, succeed on first try.
        stock = run_demo(info, "invoke")
        assert stock["status"] == 200 and stock["output"]["sku"] == "A-1", stock
        assert set(stock["output"]) == {"sku", "available"}
        flow = run_demo(info, "flow")
        api = f"{info['gateway']}/v1/ecosystems/{info['ecosystem']}"
        nadia = {"Authorization": f"Bearer {person_token(info, 'nadia')}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = httpx.get(f"{api}/flows/{flow['id']}", headers=nadia).json()
            if state["status"] not in ("running", "pending"):
                break
            time.sleep(0.2)
        assert state["status"] == "completed", state
        assert [s["name"] for s in state["steps"]] == ["forecast", "reserve", "ship"]
        assert {s["status"] for s in state["steps"]} == {"done"}, state
        # northwind's back-end reported the shipment: contoso's subscription delivered it.
        deadline = time.monotonic() + 30
        delivered: list[Any] = []
        while time.monotonic() < deadline and not delivered:
            log = run_demo(info, "deliveries")["items"]
            delivered = [d for d in log if d["status"] == "delivered"]
            time.sleep(0.2)
        assert delivered and delivered[0]["event_type"] == "shipment.delivered", log
        replayed = run_demo(info, "replay")
        assert replayed["webhook_id"] == delivered[0]["webhook_id"]
        inbox = httpx.get(f"{info['demo_backends']['contoso']}/webhooks").json()["items"]
        ids = [m["webhook_id"] for m in inbox]
        assert delivered[0]["webhook_id"] in ids
        assert all(m["signature_checked"] for m in inbox)
        # Only the demo back-ends' ports are open: NATS monitoring and metrics stay refused.
        fatima = {"Authorization": f"Bearer {person_token(info, 'fatima')}"}
        nats_monitor = 8223 + offset
        for port in (nats_monitor, 9101 + offset, 8081 + offset):
            refused = httpx.post(
                f"{api}/partners/fabrikam/backends",
                json={"name": f"peek-{port}", "base_url": f"http://127.0.0.1:{port}"},
                headers=fatima,
            )
            assert refused.status_code == 400, refused.text
            assert "not a public address" in refused.json()["detail"]
        olivia = {"Authorization": f"Bearer {person_token(info, 'olivia')}"}
        allowed = httpx.get(f"{api}/egress-allowlist", headers=olivia)
        ports = sorted(int(e.rsplit(":", 1)[1]) for e in allowed.json()["entries"])
        assert ports == sorted(9201 + offset + i for i in range(3)), allowed.text

        # Ctrl-C, then start again at once: closed connections (TIME_WAIT) do not block it.
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        assert "no process left running" in rest
        again, output = start_up(var, offset)
        try:
            assert "already in use" not in output, output
            assert "partnermesh is up in" in output, output
            assert "Hello, Nadia Novak" in sign_in_to_portal(info, "nadia")
            assert run_demo(info, "invoke")["status"] == 200
        finally:
            again.send_signal(signal.SIGINT)
            again.communicate(timeout=30)

    def test_state_of_an_earlier_run_on_other_ports_still_signs_in(self, tmp_path: Path) -> None:
        var = tmp_path / "var"
        first, second = offset_with_free_ports(), offset_with_free_ports()
        proc, output = start_up(var, first)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert "partnermesh is up in" in output, output
        proc, output = start_up(var, second)
        try:
            assert "partnermesh is up in" in output, output
            info = json.loads((var / "mesh.json").read_text())
            assert info["portal"] == f"http://127.0.0.1:{8082 + second}"
            assert "Hello, Noah Nguyen" in sign_in_to_portal(info, "noah")
            # The demo back-ends moved with the mesh: the printed example still answers.
            assert info["demo_backends"]["contoso"] == f"http://127.0.0.1:{9201 + second}"
            assert run_demo(info, "invoke")["status"] == 200
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)


class TestPortCheck:
    def test_closed_connections_do_not_count_and_listeners_do(self) -> None:
        import socket

        from deploy.launcher import listening
        from mesh.localnats import port_in_use

        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            assert listening(port)
            server.accept()[0].close()  # the probe's connection
            client = socket.create_connection(("127.0.0.1", port))
            conn, _ = server.accept()
            conn.close()  # the server side closes first: its end stays in TIME_WAIT
            client.recv(1)
            client.close()
        assert port_in_use(port), "a plain bind is refused while TIME_WAIT lasts"
        assert not listening(port), "but nothing listens, and the servers can bind"
        with socket.socket() as again:  # as the servers do
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
