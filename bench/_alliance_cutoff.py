"""How fast an ended alliance stops every allied call, on the whole mesh of ``make run``.

``partnermesh up`` runs in a subprocess (its own state directory and ports) and seeds its
demo alliance between ``acme`` and ``meridian``. Each round, with the alliance active:

- an allies-route read: acme's northwind back-end reads Tara's (meridian) card through
  ``/v1/ecosystems/acme/allies/meridian/people/{tara}/card``;
- a call with an exchanged token: wideworld's back-end (meridian) exchanges its token into
  acme and invokes ``contoso.stock-level``, which contoso granted to it across;

both must succeed. Then meridian's operator ends the alliance at identity, and both calls
are repeated back to back until each is refused; the time from the end's reply to each
refusal is recorded. The token used after the end is the one exchanged before it. The
next round agrees a new alliance (acme proposes the demo's terms, meridian accepts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from deploy.demo import PASSWORD
from deploy.demo import alliance as demo
from deploy.launcher import Ports
from identity.cli.devclient import login

TARGET_MS = 1000.0
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
SCOPES = "openid admin profile:read directory:read"


def free_offset() -> int:
    """A port offset under which every port of the launcher is free (below the ephemeral
    range, so a port free now stays free)."""
    for _ in range(50):
        offset = random.randrange(6000, 22700)
        try:
            for port in Ports().offset(offset).all().values():
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return offset
        except OSError:
            continue
    raise RuntimeError("no free port range for the mesh")


@contextlib.contextmanager
def launched() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The mesh as ``make run`` starts it; yields its ``mesh.json`` and demo credentials."""
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp) / "var"
        argv = [sys.executable, "-m", "deploy.cli", "up", "--var", str(var)]
        proc = subprocess.Popen(
            [*argv, "--port-offset", str(free_offset())],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output = wait_up(proc)
            if not (var / "mesh.json").exists():
                raise RuntimeError(f"the mesh did not come up:\n{output[-3000:]}")
            info = json.loads((var / "mesh.json").read_text())
            yield info, json.loads((var / "demo-identity.json").read_text())
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def wait_up(proc: subprocess.Popen[str], within: float = 180) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    return "".join(lines)


class Calls:
    """The two allied calls, and what each needs (tokens, ids)."""

    def __init__(self, http: httpx.AsyncClient, info: dict[str, Any], creds: dict[str, Any]):
        self.http, self.info, self.creds = http, info, creds
        self.ally = creds["allies"][demo.ALLY]
        self.api = f"{info['gateway']}/v1/ecosystems/{demo.ECO}"
        self.tara = info["alliance"]["people"]["tara"]
        self.reader = ""
        self.exchanged = ""

    def token_endpoint(self, eco: str) -> str:
        return f"{self.info['identity']}/eco/{eco}/token"

    async def client_token(self, eco: str, client_id: str, scope: str) -> str:
        clients = self.ally["clients"] if eco == demo.ALLY else self.creds["clients"]
        reply = await self.http.post(
            self.token_endpoint(eco),
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(client_id, clients[client_id]["client_secret"]),
        )
        reply.raise_for_status()
        return str(reply.json()["access_token"])

    async def person(self, eco: str, username: str) -> str:
        issuer = f"{self.info['identity']}/eco/{eco}"
        redirect = "http://127.0.0.1:8099/callback"
        done = await login(self.http, issuer, "mesh-cli", username, PASSWORD, redirect, SCOPES)
        return str(done["access_token"])

    async def exchange(self) -> str:
        """wideworld's back-end token of meridian, exchanged into acme."""
        own = await self.client_token(demo.ALLY, "wideworld-backend", "connector:invoke")
        client = self.ally["clients"]["wideworld-backend"]
        reply = await self.http.post(
            self.token_endpoint(demo.ECO),
            data={
                "grant_type": EXCHANGE,
                "subject_token": own,
                "subject_token_type": ACCESS_TOKEN,
                "scope": "connector:invoke",
            },
            # a client of meridian authenticates at acme as <client>@meridian
            auth=(f"{client['client_id']}@{demo.ALLY}", client["client_secret"]),
        )
        reply.raise_for_status()
        return str(reply.json()["access_token"])

    async def card(self) -> bool:
        path = f"{self.api}/allies/{demo.ALLY}/people/{self.tara}/card"
        reply = await self.http.get(path, headers={"Authorization": f"Bearer {self.reader}"})
        return reply.status_code == 200

    async def invoke(self) -> bool:
        reply = await self.http.post(
            f"{self.api}/operations/{demo.GRANT['operation']}/invoke",
            json={"input": {"sku": "A-1"}},
            headers={"Authorization": f"Bearer {self.exchanged}"},
        )
        return reply.status_code == 200


async def until(check: Callable[[], Awaitable[bool]], want: bool, within: float = 30) -> float:
    """Seconds until ``check()`` answers ``want`` (polled back to back)."""
    started = time.perf_counter()
    while (await check()) is not want:
        if time.perf_counter() - started > within:
            raise TimeoutError(f"{check.__name__} never answered {want}")
    return time.perf_counter() - started


async def agree(identity: str, olivia: str, mira: str) -> str:
    """A new alliance on the demo's terms: acme proposes, meridian accepts."""
    async with httpx.AsyncClient(base_url=identity, timeout=30) as idp:
        made = await demo.agree(idp, olivia, mira)
    return str(made["alliance"])


async def cutoff(quick: bool) -> dict[str, Any]:
    with launched() as (info, creds):
        async with httpx.AsyncClient(timeout=30) as http:
            return await rounds_of(http, info, creds, 2 if quick else 5)


async def rounds_of(
    http: httpx.AsyncClient, info: dict[str, Any], creds: dict[str, Any], rounds: int
) -> dict[str, Any]:
    card_ms: list[float] = []
    invoke_ms: list[float] = []
    end_ms: list[float] = []
    calls = Calls(http, info, creds)
    calls.reader = await calls.client_token(demo.ECO, "northwind-backend", "profile:read")
    olivia = await calls.person(demo.ECO, demo.OPERATORS[demo.ECO])
    mira = await calls.person(demo.ALLY, demo.OPERATORS[demo.ALLY])
    alliance = info["alliance"]["alliance"]
    for r in range(rounds):
        if r:
            alliance = await agree(info["identity"], olivia, mira)
        await until(calls.card, True)
        calls.exchanged = await calls.exchange()
        await until(calls.invoke, True)
        started = time.perf_counter()
        ended = await http.post(
            f"{info['identity']}/eco/{demo.ALLY}/admin/alliances/{alliance}/end",
            json={},
            headers={"Authorization": f"Bearer {mira}"},
        )
        ended.raise_for_status()
        end_ms.append((time.perf_counter() - started) * 1000)
        card_s, invoke_s = await asyncio.gather(
            until(calls.card, False), until(calls.invoke, False)
        )
        card_ms.append(card_s * 1000)
        invoke_ms.append(invoke_s * 1000)
    worst = max(card_ms + invoke_ms)
    return {
        "rounds": rounds,
        "allies_read_refused_after_end_p50_ms": round(statistics.median(card_ms), 1),
        "allies_read_refused_after_end_max_ms": round(max(card_ms), 1),
        "exchanged_call_refused_after_end_p50_ms": round(statistics.median(invoke_ms), 1),
        "exchanged_call_refused_after_end_max_ms": round(max(invoke_ms), 1),
        "end_request_p50_ms": round(statistics.median(end_ms), 1),
        "target_ms": TARGET_MS,
        "worst_vs_target": round(worst / TARGET_MS, 3),
    }
