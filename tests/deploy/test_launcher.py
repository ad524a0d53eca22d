"""`partnermesh up` as a user runs it: the whole mesh starts, answers, and stops clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nats
import pytest

from contracts.bus import inbox_prefix
from mesh.localnats import free_port

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
    """A port offset under which every default port of the launcher is free."""
    from deploy.launcher import Ports

    for _ in range(50):
        offset = free_port() % 20000 + 20000 - 8080
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


@pytest.fixture
def mesh(tmp_path):
    """The mesh started by the launcher in a subprocess, with its own var dir and ports."""
    var = tmp_path / "var"
    offset = offset_with_free_ports()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "up", "--var", str(var), "--port-offset", str(offset)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if "Press Ctrl-C" in line:
            break
    info_path = var / "mesh.json"
    yield proc, var, "".join(output), info_path
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


class TestLauncher:
    def test_up_answers_and_stops_clean(self, mesh):
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

    def test_taken_port_is_named(self, tmp_path):
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
