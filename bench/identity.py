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
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
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


async def measure_ours(
    tmp: str, nats_url: str, n_cc: int, n_login: int, conc: int
) -> dict[str, Any]:
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
        idle = rss_kib(proc.pid)
        issuer = f"{url}/eco/acme"
        backend = creds["clients"]["northwind-backend"]
        cc = await client_credentials(
            f"{issuer}/token",
            (backend["client_id"], backend["client_secret"]),
            "directory:read profile:read",
            n_cc,
            conc,
        )
        people = list(creds["people"])
        logins = await password_logins(
            issuer, people, "partnermesh-demo", n_login, max(2, (os.cpu_count() or 1) * 2)
        )
        return {
            "cc": cc,
            "logins": logins,
            "idle_rss_mib": round(idle / 1024, 1),
            "rss_after_load_mib": round(rss_kib(proc.pid) / 1024, 1),
        }


async def measure_oidc_provider(tmp: str, n_cc: int, conc: int) -> dict[str, Any]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return {"skipped": "node or npm not installed"}
    version, problem = await asyncio.to_thread(install_oidc_provider, tmp, npm)
    if problem:
        return {"skipped": problem}
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
        idle = rss_kib(proc.pid)
        cc = await client_credentials(
            f"{url}/token", ("bench", secret), "directory:read profile:read", n_cc, conc
        )
        return {"version": version, "cc": cc, "idle_rss_mib": round(idle / 1024, 1)}


async def run(quick: bool) -> dict[str, Any]:
    n_cc, n_login, conc = (300, 24, 16) if quick else (3000, 160, 16)
    cores = os.cpu_count() or 1
    with local_nats() as nats_url, tempfile.TemporaryDirectory() as tmp:
        ours = await measure_ours(tmp, nats_url, n_cc, n_login, conc)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            node = await measure_oidc_provider(tmp, n_cc, conc)
        except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as exc:
            node = {"skipped": f"oidc-provider did not run: {exc}"}
    sign = rs256_rate(0.5 if quick else 2.0)
    argon = argon2_rate(1.0 if quick else 3.0, cores)
    cc_rate, login_rate = ours["cc"]["per_s"], ours["logins"]["per_s"]
    figures: dict[str, Any] = {
        "client_credentials_per_s": cc_rate,
        "password_logins_per_s": login_rate,
        "password_logins_per_s_per_core": round(login_rate / cores, 1),
        "ratio_cc_vs_raw_rs256_signing": round(cc_rate / sign, 3),
        "ratio_logins_vs_raw_argon2id_verify": round(login_rate / argon, 3),
        "idle_rss_mib": ours["idle_rss_mib"],
    }
    if "cc" in node:
        figures["ratio_cc_vs_oidc_provider"] = round(cc_rate / node["cc"]["per_s"], 2)
        figures["oidc_provider_cc_per_s"] = node["cc"]["per_s"]
        figures["oidc_provider_idle_rss_mib"] = node["idle_rss_mib"]
    return {
        "figures": figures,
        "raw": {
            "ours": ours,
            "oidc_provider": node,
            "rs256_signs_per_s_one_thread": round(sign, 1),
            "argon2id_verifies_per_s_all_cores": round(argon, 1),
            "cores": cores,
            "concurrency": conc,
        },
        "notes": "Same client drives both servers on loopback; password logins are the real "
        "login form (CSRF, throttle check, argon2id at the configured cost, session). "
        "oidc-provider has no password store, so logins compare against raw argon2id.",
    }
