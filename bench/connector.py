"""Connector invocation overhead: NATS request → connector → back-end, against httpx direct.

Both paths call the same back-end (a tiny ASGI app under uvicorn in its own process)
in the same run. The connector path adds: the NATS round trip, token verification,
the policy, the grant and rate-limit checks, input/output JSON Schema validation,
the egress guard and the audit record. Figures: p50/p99 latency of sequential calls
and throughput with concurrent callers (rounds alternating between the two paths, the
median per-round ratio), each as a ratio against the direct path, and this process's CPU
time per call on each path (the connector runs in this process, the back-end does not).
SQLite by default; ``PM_BENCH_DATABASE_URL`` selects another (empty) database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import nats
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.claims import ALL_SCOPES, DEFAULT_AUDIENCE
from contracts.v1 import connector as c
from mesh.client import call
from mesh.localnats import free_port, local_nats, wait_port
from mesh.runtime import service_runtime
from mesh.tokens import StaticKeys, TokenVerifier, issuer_for
from services.connector import handlers, models
from services.connector.settings import ConnectorSettings

IDENTITY = "http://identity.bench"
ITEM = json.dumps({"id": "a1", "name": "widget", "price": 10, "stock": 42}).encode()


async def backend(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The partner back-end: answers every GET with a small JSON item."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": ITEM})


@contextlib.contextmanager
def backend_process() -> Any:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.connector:backend",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        wait_port(port, 20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


class Tokens:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update(kid="bench", use="sig", alg="RS256")
        self.keys = StaticKeys({issuer_for(IDENTITY, "acme"): [jwk]})
        self.pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def mint(self, partner: str, roles: list[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer_for(IDENTITY, "acme"),
            "sub": f"{partner}-bench",
            "aud": DEFAULT_AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "client_id": "bench",
            "eco": "acme",
            "scope": " ".join(sorted(ALL_SCOPES)),
            "roles": roles,
            "partner": partner,
        }
        return jwt.encode(claims, self.pem, "RS256", headers={"typ": "at+jwt", "kid": "bench"})


@contextlib.asynccontextmanager
async def connector(nats_url: str, tokens: Tokens, folder: str) -> AsyncIterator[None]:
    settings = ConnectorSettings(
        nats_url=nats_url,
        environment="test",
        log_level="WARNING",
        database_url=database_url(folder),
    )
    verifier = TokenVerifier(tokens.keys, IDENTITY, DEFAULT_AUDIENCE)
    async with service_runtime(
        "connector", settings, models.metadata, verifier=verifier, setup_logging=False
    ) as rt:
        handlers.register(rt)
        await rt.start()
        yield


def database_url(folder: str) -> str:
    return os.environ.get("PM_BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{folder}/connector.db"


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


async def _latencies(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


async def _throughput(
    fn: Callable[[], Awaitable[Any]], n: int, workers: int
) -> tuple[float, float]:
    """Calls per second with ``workers`` concurrent callers, and this process's CPU time
    per call meanwhile (the connector runs in this process; the back-end does not)."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await fn()

    t, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return n / (time.perf_counter() - t), (time.process_time() - cpu) / n * 1e6


async def _alternating(
    direct: Callable[[], Awaitable[Any]],
    through: Callable[[], Awaitable[Any]],
    n: int,
    workers: int,
    rounds: int,
) -> dict[str, Any]:
    """Throughput rounds alternating between the two paths (the machine's load drifts);
    medians of each path and of the per-round ratios."""
    runs: dict[str, list[tuple[float, float]]] = {"direct": [], "connector": []}
    for i in range(rounds):
        pair = [("direct", direct), ("connector", through)]
        for name, fn in pair if i % 2 == 0 else pair[::-1]:
            runs[name].append(await _throughput(fn, n, workers))
    pairs = list(zip(runs["direct"], runs["connector"], strict=True))
    return {
        "direct_rps": round(statistics.median(r[0] for r in runs["direct"]), 1),
        "connector_rps": round(statistics.median(r[0] for r in runs["connector"]), 1),
        "ratio": round(statistics.median(m[0] / d[0] for d, m in pairs), 3),
        "direct_cpu_us_per_call": round(statistics.median(r[1] for r in runs["direct"]), 1),
        "connector_cpu_us_per_call": round(statistics.median(r[1] for r in runs["connector"]), 1),
        "rounds": {k: [[round(a, 1), round(b, 1)] for a, b in v] for k, v in runs.items()},
    }


async def _setup(nc: Any, tokens: Tokens, url: str) -> str:
    op, admin = "fabrikam.item", tokens.mint("fabrikam", ["partner_admin", "member"])
    operator = tokens.mint("acme-hq", ["operator"])
    await call(nc, c.SET_ALLOWLIST, {"eco": "acme", "entries": ["127.0.0.1/32"]}, operator)
    await call(
        nc,
        c.REGISTER_BACKEND,
        {"eco": "acme", "partner": "fabrikam", "name": "erp", "base_url": url},
        admin,
    )
    schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
    await call(
        nc,
        c.DECLARE_OPERATION,
        {
            "eco": "acme",
            "partner": "fabrikam",
            "backend": "erp",
            "name": "item",
            "method": "GET",
            "path": "/items/{item_id}",
            "input_schema": schema
            | {"required": ["item_id"], "properties": {"item_id": {"type": "string"}}},
            "output_schema": schema,
        },
        admin,
    )
    await call(nc, c.CREATE_GRANT, {"eco": "acme", "operation": op, "grantee": "contoso"}, admin)
    return op


async def run(quick: bool) -> dict[str, Any]:
    n, workers, rounds = (150, 8, 2) if quick else (1500, 16, 5)
    tokens = Tokens()
    with (
        tempfile.TemporaryDirectory(prefix="pm-bench-") as folder,
        local_nats() as nats_url,
        backend_process() as url,
    ):
        async with connector(nats_url, tokens, folder), httpx.AsyncClient() as http:
            nc = await nats.connect(nats_url)
            try:
                op = await _setup(nc, tokens, url)
                caller = tokens.mint("contoso", ["member"])
                body = {"eco": "acme", "operation": op, "input": {"item_id": "a1"}}

                async def direct() -> None:
                    (await http.get(f"{url}/items/a1")).raise_for_status()

                async def through() -> None:
                    await call(nc, c.INVOKE, body, caller, timeout=30)

                for fn in (direct, through):  # warm up connections and caches
                    await _latencies(fn, 20)
                lat_direct = await _latencies(direct, n)
                lat_mesh = await _latencies(through, n)
                tp = await _alternating(direct, through, n, workers, rounds)
            finally:
                await nc.drain()
    d, m = _stats(lat_direct), _stats(lat_mesh)
    return {
        "database": database_url("").split(":", 1)[0].split("+", 1)[0],
        "calls": n,
        "concurrency": workers,
        "direct": {**d, "throughput_rps": tp["direct_rps"]},
        "connector": {**m, "throughput_rps": tp["connector_rps"]},
        "p50_ratio": round(m["p50_ms"] / d["p50_ms"], 2),
        "p99_ratio": round(m["p99_ms"] / d["p99_ms"], 2),
        "throughput_ratio": tp["ratio"],  # median of the alternating rounds' ratios
        "direct_cpu_us_per_call": tp["direct_cpu_us_per_call"],
        "connector_cpu_us_per_call": tp["connector_cpu_us_per_call"],
        "throughput_rounds": tp["rounds"],
        "overhead_p50_ms": round(m["p50_ms"] - d["p50_ms"], 3),
        "note": "ratios are connector path / direct httpx to the same back-end, same run",
    }
