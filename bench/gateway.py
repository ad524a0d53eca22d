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

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer_for(self.url, ECO),
            "sub": "bench-user",
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
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def process(args: list[str], env: dict[str, str]) -> AsyncIterator[None]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_ok(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, headers=headers)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


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
    """Fallback generator in its own process: CONNECTIONS httpx clients in a loop."""
    code = (
        "import asyncio,json,sys,time,httpx\n"
        "url,hdrs,secs,conns=sys.argv[1],json.loads(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4])\n"
        "lat=[];bad=0\n"
        "async def worker(c,end):\n"
        "  global bad\n"
        "  while time.perf_counter()<end:\n"
        "    t=time.perf_counter();r=await c.get(url,headers=hdrs);lat.append(time.perf_counter()-t)\n"
        "    bad+=r.status_code!=200\n"
        "async def main():\n"
        "  async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns)) as c:\n"
        "    end=time.perf_counter()+secs;await asyncio.gather(*(worker(c,end) for _ in range(conns)))\n"
        "asyncio.run(main());lat.sort()\n"
        "print(json.dumps({'rps':len(lat)/secs,'p50_ms':lat[len(lat)//2]*1e3,"
        "'p99_ms':lat[int(len(lat)*.99)]*1e3,'requests':len(lat),'non_2xx':bad}))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        url,
        json.dumps(headers),
        str(seconds),
        str(CONNECTIONS),
        stdout=subprocess.PIPE,
    )
    out = (await proc.communicate())[0]
    return dict(json.loads(out))


async def measure(url: str, headers: dict[str, str], seconds: int) -> dict[str, Any]:
    load = wrk if shutil.which("wrk") else pyload
    await load(url, headers, 1)  # warm up (JIT-free, but caches, pools and JWKS)
    return await load(url, headers, seconds)


def gateway_env(nats_url: str, issuer_url: str, port: int, cache: bool) -> dict[str, str]:
    return {
        "PM_GATEWAY_PORT": str(port),
        "PM_GATEWAY_NATS_URL": nats_url,
        "PM_GATEWAY_IDENTITY_URL": issuer_url,
        "PM_GATEWAY_TOKEN_CACHE": "true" if cache else "false",
        "PM_GATEWAY_PARTNER_RATE_LIMIT": UNLIMITED,
        "PM_GATEWAY_CLIENT_RATE_LIMIT": UNLIMITED,
        "PM_GATEWAY_WORKERS": "1",
    }


async def run(quick: bool) -> dict[str, Any]:
    seconds = 3 if quick else 10
    results: dict[str, Any] = {
        "load_generator": f"wrk -t1 -c{CONNECTIONS}"
        if shutil.which("wrk")
        else f"python httpx, {CONNECTIONS} connections, separate process",
        "uvicorn_workers": 1,
        "seconds_per_target": seconds,
    }
    issuer = Issuer()
    with local_nats() as nats_url, tempfile.TemporaryDirectory() as tmp:
        async with serve(issuer.app) as issuer_url:
            issuer.url = issuer_url
            auth = {"Authorization": f"Bearer {issuer.token()}"}
            port = free_port()
            hello_args = [
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
            async with process(hello_args, {}):
                await wait_ok(f"http://127.0.0.1:{port}/hello")
                results["hello"] = await measure(f"http://127.0.0.1:{port}/hello", {}, seconds)
            profile_env = {
                "PM_PROFILE_NATS_URL": nats_url,
                "PM_PROFILE_IDENTITY_URL": issuer_url,
                "PM_PROFILE_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'profile.db'}",
                "PM_PROFILE_LOG_LEVEL": "WARNING",
            }
            async with process(["-m", "services.profile"], profile_env):
                for label, cache in (("gateway_cache_on", True), ("gateway_cache_off", False)):
                    port = free_port()
                    async with process(
                        ["-m", "gateway"], gateway_env(nats_url, issuer_url, port, cache)
                    ):
                        url = f"http://127.0.0.1:{port}/v1/ecosystems/{ECO}/echo?message=hi"
                        await wait_ok(url, auth)
                        results[label] = await measure(url, auth, seconds)
    hello = results["hello"]
    for label in ("gateway_cache_on", "gateway_cache_off"):
        gw = results[label]
        results[f"{label}_throughput_ratio"] = round(gw["rps"] / hello["rps"], 3)
        results[f"{label}_p50_ratio"] = round(gw["p50_ms"] / hello["p50_ms"], 2)
        results[f"{label}_p99_ratio"] = round(gw["p99_ms"] / hello["p99_ms"], 2)
    results["target_throughput_ratio"] = 0.5
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(quick="--quick" in sys.argv)), indent=2))
