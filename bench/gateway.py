"""Gateway benchmark: an authenticated call through the gateway, over NATS, to a service's echo,
against a bare FastAPI hello-world. Same uvicorn settings (1 worker, uvloop/httptools when
installed, no uvicorn access log) and the same load generator for both: ``wrk`` when it is
installed (Debian package ``wrk``), else a Python/httpx generator in a separate process.

Everything runs on loopback: a nats-server from the wheel, a JWKS issuer in this process,
the profile service and the gateway as their own processes (the gateway verifies tokens
against the issuer's JWKS, as in production). Figures: requests/s, p50 and p99 of each
target, and the gateway/hello throughput ratio with the verified-token cache on and off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from mesh.localnats import free_port, local_nats
from mesh.tokens import issuer_for

ECO = "bench"
CONNECTIONS = 32
UNLIMITED = json.dumps({"rate": 1e9, "burst": 1_000_000_000})


def hello_app() -> FastAPI:
    """The baseline: the smallest FastAPI app that answers JSON."""
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    return app


class Issuer:
    """One RSA key, published as an OIDC issuer's JWKS for ecosystem ``bench``."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwk.update(kid="bench", use="sig", alg="RS256")
        self.url = ""
        self.app = FastAPI()
        self.app.get("/eco/{eco}/.well-known/openid-configuration")(self._discovery)
        self.app.get("/eco/{eco}/jwks")(self._jwks)

    async def _discovery(self, eco: str) -> dict[str, str]:
        return {"issuer": issuer_for(self.url, eco), "jwks_uri": f"{self.url}/eco/{eco}/jwks"}

    async def _jwks(self, eco: str) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def token(self, sub: str = "bench-user") -> str:
        now = int(time.time())
        claims = {
            "iss": issuer_for(self.url, ECO),
            "sub": sub,
            "aud": "partnermesh",
            "iat": now,
            "exp": now + 3600,
            "jti": "bench",
            "client_id": "bench-client",
            "scope": "mesh:ping",
            "eco": ECO,
            "partner": "bench-partner",
            "roles": ["member"],
        }
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return jwt.encode(claims, pem, "RS256", headers={"typ": "at+jwt", "kid": "bench"})


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn offers no event for this)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def process(args: list[str], env: dict[str, str]) -> AsyncIterator[int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_ok(url: str, headers: dict[str, str] | None = None, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, headers=headers)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {within}s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


async def wrk(url: str, headers: dict[str, str], seconds: int) -> dict[str, Any]:
    args = ["-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(
        "wrk", *args, url, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    out = (await proc.communicate())[0].decode()
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)$", out, re.MULTILINE))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


async def pyload(url: str, headers: dict[str, str], seconds: int) -> dict[str, Any]:
    """The fallback generator (``bench/_pyload.py``) in its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._pyload",
        url,
        json.dumps(headers),
        str(seconds),
        str(CONNECTIONS),
        stdout=subprocess.PIPE,
    )
    out = (await proc.communicate())[0]
    return dict(json.loads(out))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nats_pid(nats_url: str) -> int:
    port = nats_url.rsplit(":", 1)[1]
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(b"nats-server") and port.encode() in argv:
                return int(entry.name)
    return 0


async def measure(
    url: str, headers: dict[str, str], seconds: int, pids: dict[str, int]
) -> dict[str, Any]:
    """Load ``url``; also the CPU each process in ``pids`` spent per request meanwhile."""
    load = wrk if shutil.which("wrk") else pyload
    await load(url, headers, 1)  # warm up (caches, pools, JWKS)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    result = await load(url, headers, seconds)
    n = max(1, result["requests"])
    result["cpu_us_per_request"] = {
        name: round((cpu_seconds(pid) - before[name]) / n * 1e6, 1) for name, pid in pids.items()
    }
    return result


# Gateway configurations measured: (label, verified-token cache, JSON access log).
# The hello-world runs without uvicorn's access log, so the like-for-like runs have none.
CONFIGS = (
    ("gateway_cache_on", True, False),
    ("gateway_cache_off", False, False),
    ("gateway_cache_on_access_log", True, True),
)


def gateway_env(
    nats_url: str, issuer_url: str, port: int, cache: bool, access_log: bool = False
) -> dict[str, str]:
    return {
        "PM_GATEWAY_PORT": str(port),
        "PM_GATEWAY_NATS_URL": nats_url,
        "PM_GATEWAY_IDENTITY_URL": issuer_url,
        "PM_GATEWAY_TOKEN_CACHE": "true" if cache else "false",
        "PM_GATEWAY_ACCESS_LOG": "true" if access_log else "false",
        "PM_GATEWAY_PARTNER_RATE_LIMIT": UNLIMITED,
        "PM_GATEWAY_CLIENT_RATE_LIMIT": UNLIMITED,
        "PM_GATEWAY_WORKERS": "1",
    }


@contextlib.asynccontextmanager
async def hello_server() -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    args = [
        "-m",
        "uvicorn",
        "bench.gateway:hello_app",
        "--factory",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    async with process(args, {}) as pid:
        url = f"http://127.0.0.1:{port}/hello"
        await wait_ok(url)
        yield url, pid


@contextlib.asynccontextmanager
async def gateway_server(
    nats_url: str, issuer_url: str, cache: bool, access_log: bool
) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    env = gateway_env(nats_url, issuer_url, port, cache, access_log)
    async with process(["-m", "gateway"], env) as pid:
        yield f"http://127.0.0.1:{port}/v1/ecosystems/{ECO}/echo?message=hi", pid


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def summarise(rounds: list[dict[str, dict[str, Any]]], labels: list[str]) -> dict[str, Any]:
    """Median figures per target, and the median of the per-round ratios to the baseline."""
    out: dict[str, Any] = {}
    for label in ["hello", *labels]:
        runs = [r[label] for r in rounds]
        out[label] = {
            k: round(median([x[k] for x in runs]), 2) for k in ("rps", "p50_ms", "p99_ms")
        }
        out[label]["non_2xx"] = sum(x["non_2xx"] for x in runs)
        out[label]["cpu_us_per_request"] = {
            proc: round(median([x["cpu_us_per_request"][proc] for x in runs]), 1)
            for proc in runs[0]["cpu_us_per_request"]
        }
    for label in labels:
        for key, name in (("rps", "throughput"), ("p50_ms", "p50"), ("p99_ms", "p99")):
            per_round = [r[label][key] / r["hello"][key] for r in rounds]
            out[f"{label}_{name}_ratio"] = round(median(per_round), 3)
    return out


async def run(quick: bool) -> dict[str, Any]:
    seconds, n_rounds = (3, 1) if quick else (5, 3)
    configs = CONFIGS[:2] if quick else CONFIGS
    labels = [c[0] for c in configs]
    results: dict[str, Any] = {
        "load_generator": f"wrk -t1 -c{CONNECTIONS}"
        if shutil.which("wrk")
        else f"python httpx, {CONNECTIONS} connections, separate process",
        "uvicorn_workers": 1,
        "seconds_per_run": seconds,
        "rounds": n_rounds,
        "method": "all servers up at once; each round measures the hello-world baseline and "
        "every gateway configuration in turn; ratios are per round, then the median",
    }
    issuer = Issuer()
    rounds: list[dict[str, dict[str, Any]]] = []
    with local_nats() as nats_url, tempfile.TemporaryDirectory() as tmp:
        async with serve(issuer.app) as issuer_url, contextlib.AsyncExitStack() as stack:
            issuer.url = issuer_url
            auth = {"Authorization": f"Bearer {issuer.token()}"}
            profile_env = {
                "PM_PROFILE_NATS_URL": nats_url,
                "PM_PROFILE_IDENTITY_URL": issuer_url,
                "PM_PROFILE_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'profile.db'}",
                "PM_PROFILE_LOG_LEVEL": "WARNING",
            }
            profile = await stack.enter_async_context(
                process(["-m", "services.profile"], profile_env)
            )
            hello_url, hello_pid = await stack.enter_async_context(hello_server())
            targets: dict[str, tuple[str, dict[str, str], dict[str, int]]] = {
                "hello": (hello_url, {}, {"hello": hello_pid})
            }
            for label, cache, access_log in configs:
                server = gateway_server(nats_url, issuer_url, cache, access_log)
                url, pid = await stack.enter_async_context(server)
                pids = {"gateway": pid, "profile": profile, "nats": nats_pid(nats_url)}
                targets[label] = (url, auth, pids)
            for url, headers, _ in targets.values():
                await wait_ok(url, headers)
            for _ in range(n_rounds):
                rounds.append(
                    {k: await measure(u, h, seconds, p) for k, (u, h, p) in targets.items()}
                )
    results.update(summarise(rounds, labels))
    results["target_throughput_ratio"] = 0.5
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(quick="--quick" in sys.argv)), indent=2))
