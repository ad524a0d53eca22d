"""Identity provider throughput: client-credentials tokens/s and password logins/s.

Both servers run as separate processes on loopback and are driven by the same async
httpx client. Baselines measured in the same run:

- node ``oidc-provider`` (from npm, installed into a temp dir) configured equivalently:
  client credentials, ``client_secret_basic``, RS256 JWT access tokens for one resource.
  Skipped (and said so) when node/npm are missing or the install fails.
- raw RS256 signing of the same claims in this process (the cost floor of a token);
- raw argon2id verification with the provider's parameters, on every core (the bound
  of a password login).

Idle RSS of each server process is read from ``/proc`` after start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from identity.crypto import Passwords
from identity.settings import IdentitySettings
from mesh.localnats import free_port, local_nats

NODE_SERVER = r"""
import Provider from 'oidc-provider';
const port = Number(process.env.PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench', client_secret: process.env.SECRET, grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
    scope: 'directory:read profile:read',
  }],
  jwks: { keys: [JSON.parse(process.env.JWK)] },
  scopes: ['directory:read', 'profile:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:partnermesh',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'directory:read profile:read', audience: 'urn:partnermesh',
        accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def wait_http(url: str, proc: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], cwd: str | None = None) -> Iterator[Any]:
    proc = subprocess.Popen(  # noqa: S603 (argv built here from fixed commands)
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def drive(n: int, concurrency: int, call: Callable[[], Awaitable[bool]]) -> dict[str, float]:
    """Run ``n`` calls with ``concurrency`` workers; per-second rate and failures."""
    remaining = n
    failures = 0

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            if not await call():
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "per_s": round(n / elapsed, 1),
        "n": n,
        "failures": failures,
        "seconds": round(elapsed, 2),
    }


async def client_credentials(
    token_url: str, auth: tuple[str, str], scope: str, n: int, concurrency: int
) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def one() -> bool:
            resp = await http.post(
                token_url, auth=auth, data={"grant_type": "client_credentials", "scope": scope}
            )
            return resp.status_code == 200 and "access_token" in resp.json()

        for _ in range(min(50, n)):
            assert await one(), "warm-up token request failed"
        return await drive(n, concurrency, one)


async def password_logins(
    issuer: str, people: list[str], password: str, n: int, concurrency: int
) -> dict[str, float]:
    """POST the real login form (CSRF token, argon2id check, session) ``n`` times."""
    import re

    browsers = [httpx.AsyncClient(timeout=30) for _ in range(concurrency)]
    try:
        forms = []
        for b in browsers:
            page = await b.get(f"{issuer}/login")
            forms.append(dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)))
        turn = 0

        async def one() -> bool:
            nonlocal turn
            turn += 1
            i = turn % concurrency
            data = {**forms[i], "username": people[turn % len(people)], "password": password}
            resp = await browsers[i].post(f"{issuer}/login", data=data)
            return resp.status_code == 303

        return await drive(n, concurrency, one)
    finally:
        for b in browsers:
            await b.aclose()


def rs256_rate(seconds: float) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": "http://127.0.0.1/eco/acme",
        "sub": "x",
        "aud": "partnermesh",
        "iat": 1,
        "exp": 2,
        "jti": "j",
        "client_id": "c",
        "scope": "directory:read",
        "eco": "acme",
        "partner": "p",
        "roles": ["member"],
    }
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        jwt.encode(claims, key, "RS256", headers={"typ": "at+jwt", "kid": "k"})  # type: ignore[arg-type]
        count += 1
    return count / (time.perf_counter() - started)


def argon2_rate(seconds: float, threads: int) -> float:
    s = IdentitySettings()
    pw = Passwords(s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism)
    stored = pw.hash("partnermesh-demo")
    deadline = time.perf_counter() + seconds

    def loop() -> int:
        done = 0
        while time.perf_counter() < deadline:
            pw.verify(stored, "partnermesh-demo")
            done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: loop(), range(threads)))
    return total / (time.perf_counter() - started)


def seed_ours(env: dict[str, str], creds_path: str) -> dict[str, Any]:
    """Seed the demo ecosystem through the real CLI; its credentials."""
    argv = [sys.executable, "-m", "identity", "seed-demo", "--out", creds_path]
    subprocess.run(argv, env=env, check=True, capture_output=True)  # noqa: S603
    creds: dict[str, Any] = json.loads(Path(creds_path).read_text())
    return creds


def install_oidc_provider(tmp: str, npm: str) -> tuple[str, str | None]:
    """npm-install oidc-provider into ``tmp``; (version, problem or None)."""
    Path(tmp, "package.json").write_text('{"name": "oidc-bench", "type": "module"}')
    Path(tmp, "server.mjs").write_text(NODE_SERVER)
    argv = [npm, "install", "oidc-provider@9", "--no-audit", "--no-fund"]
    done = subprocess.run(argv, cwd=tmp, capture_output=True, timeout=240)  # noqa: S603
    if done.returncode != 0:
        return "", "npm install oidc-provider failed: " + done.stderr.decode()[-300:]
    meta = json.loads(Path(tmp, "node_modules/oidc-provider/package.json").read_text())
    return str(meta["version"]), None


@contextlib.asynccontextmanager
async def our_server(tmp: str, nats_url: str) -> AsyncIterator[dict[str, Any]]:
    """The identity provider as its own process (``python -m identity``), seeded."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PM_IDENTITY_PORT": str(port),
        "PM_IDENTITY_PUBLIC_URL": url,
        "PM_IDENTITY_NATS_URL": nats_url,
        "PM_IDENTITY_LOG_LEVEL": "WARNING",
        "PM_IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/identity.db",
    }
    creds = await asyncio.to_thread(seed_ours, env, f"{tmp}/creds.json")
    with process([sys.executable, "-m", "identity"], env) as proc:
        await wait_http(f"{url}/readyz", proc)
        await asyncio.sleep(1.0)
        backend = creds["clients"]["northwind-backend"]
        yield {
            "issuer": f"{url}/eco/acme",
            "token_url": f"{url}/eco/acme/token",
            "auth": (backend["client_id"], backend["client_secret"]),
            "people": list(creds["people"]),
            "pid": proc.pid,
            "idle_rss_mib": round(rss_kib(proc.pid) / 1024, 1),
        }


@contextlib.asynccontextmanager
async def node_server(tmp: str) -> AsyncIterator[dict[str, Any]]:
    """node oidc-provider, installed from npm into ``tmp``; ``{"skipped": why}`` if it cannot."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        yield {"skipped": "node or npm not installed"}
        return
    version, problem = await asyncio.to_thread(install_oidc_provider, tmp, npm)
    if problem:
        yield {"skipped": problem}
        return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.update(kid="bench", use="sig", alg="RS256")
    port, secret = free_port(), "s" * 43
    env = {
        **os.environ,
        "PORT": str(port),
        "SECRET": secret,
        "JWK": json.dumps(jwk),
        "NODE_ENV": "production",
    }
    with process([node, "server.mjs"], env, cwd=tmp) as proc:
        url = f"http://127.0.0.1:{port}"
        await wait_http(f"{url}/.well-known/openid-configuration", proc)
        await asyncio.sleep(1.0)
        yield {
            "version": version,
            "token_url": f"{url}/token",
            "auth": ("bench", secret),
            "pid": proc.pid,
            "idle_rss_mib": round(rss_kib(proc.pid) / 1024, 1),
        }


async def cc_rounds(
    ours: dict[str, Any], node: dict[str, Any], n: int, rounds: int, conc: int
) -> dict[str, Any]:
    """Alternate rounds against both servers (the machine's load drifts); median ratio."""
    scope = "directory:read profile:read"
    mine, theirs, ratios = [], [], []
    for _ in range(rounds):
        a = await client_credentials(ours["token_url"], ours["auth"], scope, n, conc)
        mine.append(a)
        if "token_url" in node:
            b = await client_credentials(node["token_url"], node["auth"], scope, n, conc)
            theirs.append(b)
            ratios.append(a["per_s"] / b["per_s"])
    return {
        "ours": mine,
        "oidc_provider": theirs,
        "ratio_median": round(statistics.median(ratios), 2) if ratios else None,
    }


async def login_rounds(
    ours: dict[str, Any], n: int, rounds: int, cores: int, seconds: float
) -> dict[str, Any]:
    """Alternate real logins with raw argon2id verification on every core."""
    logins, raw, ratios = [], [], []
    for _ in range(rounds):
        run = await password_logins(
            ours["issuer"], ours["people"], "partnermesh-demo", n, max(2, cores * 2)
        )
        rate = await asyncio.to_thread(argon2_rate, seconds, cores)
        logins.append(run)
        raw.append(round(rate, 1))
        ratios.append(run["per_s"] / rate)
    return {
        "logins": logins,
        "argon2id_verifies_per_s": raw,
        "ratio_median": round(statistics.median(ratios), 3),
    }


async def run(quick: bool) -> dict[str, Any]:
    n_cc, n_login, rounds, conc = (200, 16, 2, 16) if quick else (1000, 60, 3, 16)
    cores = os.cpu_count() or 1
    with (
        local_nats() as nats_url,
        tempfile.TemporaryDirectory() as t1,
        tempfile.TemporaryDirectory() as t2,
    ):
        async with our_server(t1, nats_url) as ours, node_server(t2) as node:
            for server in (ours, node):
                if "token_url" in server:  # warm both up (JIT, caches, connections)
                    await client_credentials(
                        server["token_url"], server["auth"], "directory:read", 100, conc
                    )
            cc = await cc_rounds(ours, node, n_cc, rounds, conc)
            logins = await login_rounds(ours, n_login, rounds, cores, 1.0 if quick else 2.0)
            ours["rss_after_load_mib"] = round(rss_kib(ours["pid"]) / 1024, 1)
    sign = rs256_rate(0.5 if quick else 2.0)
    cc_rate = round(statistics.median(r["per_s"] for r in cc["ours"]), 1)
    login_rate = round(statistics.median(r["per_s"] for r in logins["logins"]), 1)
    figures: dict[str, Any] = {
        "client_credentials_per_s": cc_rate,
        "password_logins_per_s": login_rate,
        "password_logins_per_s_per_core": round(login_rate / cores, 1),
        "ratio_cc_vs_oidc_provider": cc["ratio_median"],
        "ratio_cc_vs_raw_rs256_signing": round(cc_rate / sign, 3),
        "ratio_logins_vs_raw_argon2id_verify": logins["ratio_median"],
        "idle_rss_mib": ours["idle_rss_mib"],
    }
    if cc["oidc_provider"]:
        figures["oidc_provider_cc_per_s"] = round(
            statistics.median(r["per_s"] for r in cc["oidc_provider"]), 1
        )
        figures["oidc_provider_idle_rss_mib"] = node["idle_rss_mib"]
    else:
        figures["oidc_provider"] = node.get("skipped")
    return {
        "figures": figures,
        "raw": {
            "client_credentials": cc,
            "logins": logins,
            "rs256_signs_per_s_one_thread": round(sign, 1),
            "cores": cores,
            "concurrency": conc,
            "oidc_provider_version": node.get("version"),
            "rss_after_load_mib": ours["rss_after_load_mib"],
        },
        "notes": "Both servers run side by side on loopback and are driven in alternating "
        "rounds by the same client (median of per-round ratios). Password logins are "
        "the real login form (CSRF, throttle check, argon2id at the configured cost, "
        "session); oidc-provider has no password store, so logins are compared with "
        "raw argon2id verification on every core, alternated the same way.",
    }
