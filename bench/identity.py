"""Identity provider throughput: client-credentials tokens/s and password logins/s.

Client credentials, side by side in one run: this provider and node ``oidc-provider``
(from npm, installed once into a cache under the system temp dir, keyed by the major
version) run as separate processes on loopback and are loaded by the same generator,
``wrk`` (a POST of ``grant_type=client_credentials&scope=…`` with HTTP Basic client
authentication) or, when wrk is missing, a Python/httpx generator in its own process.
oidc-provider is configured equivalently: ``client_secret_basic``, the same scope, JWT
access tokens (resource indicators, ``accessTokenFormat: 'jwt'``) signed with the same
algorithm, the same lifetime. Both algorithms are measured: ES256 (this provider's
default, the headline ratio) and RS256. Rounds alternate between the servers (the
machine's load drifts) and report the median per-round ratio, of tokens/s and of the
server process's CPU time per token. Any non-2xx answer fails the benchmark. The signing
floor (raw signatures per second on one core, this process) is reported per algorithm.

Password logins are the real login form (CSRF, throttle check, argon2id at the configured
cost, session), driven by an httpx client; oidc-provider has no password store, so they
are compared with raw argon2id verification on every core, alternated the same way.

Idle RSS of each server process is read from ``/proc`` after start-up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from identity.domain.crypto import Passwords
from identity.settings import IdentitySettings
from mesh.localnats import child_process, free_port, local_nats

OIDC_PROVIDER = "9"  # the npm major version compared against
SCOPE = "directory:read profile:read"
CONNECTIONS = 16
ALGORITHMS = ("ES256", "RS256")  # the first is the default configuration: the headline
FORM = "grant_type=client_credentials&scope=" + SCOPE.replace(":", "%3A").replace(" ", "+")

NODE_SERVER = r"""
import Provider from 'oidc-provider';
const port = Number(process.env.PORT);
const alg = process.env.ALG;
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench', client_secret: process.env.SECRET, grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
    scope: process.env.SCOPE,
  }],
  jwks: { keys: JSON.parse(process.env.JWKS) },
  scopes: process.env.SCOPE.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:partnermesh',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: process.env.SCOPE, audience: 'urn:partnermesh',
        accessTokenTTL: Number(process.env.TTL),
        accessTokenFormat: 'jwt', jwt: { sign: { alg } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = "%s"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server may serve from a worker process)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found += process_tree(int(child))
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants."""
    total = 0
    for proc in process_tree(pid):
        for line in Path(f"/proc/{proc}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


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
    subprocess.run(argv, env=env, check=True, capture_output=True)
    creds: dict[str, Any] = json.loads(Path(creds_path).read_text())
    return creds


def oidc_provider_dir(npm: str) -> tuple[Path, str]:
    """oidc-provider installed from npm into a cache dir (reused across runs); its version."""
    home = Path(tempfile.gettempdir()) / "partnermesh-bench" / f"oidc-provider-{OIDC_PROVIDER}"
    meta = home / "node_modules" / "oidc-provider" / "package.json"
    if not meta.exists():
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=home.parent))
        (staging / "package.json").write_text('{"name": "oidc-bench", "type": "module"}')
        argv = [npm, "install", f"oidc-provider@{OIDC_PROVIDER}", "--no-audit", "--no-fund"]
        done = subprocess.run(argv, cwd=staging, capture_output=True, timeout=240)
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError("npm install oidc-provider failed: " + done.stderr.decode()[-300:])
        shutil.rmtree(home, ignore_errors=True)
        staging.rename(home)
    (home / "server.mjs").write_text(NODE_SERVER)
    return home, str(json.loads(meta.read_text())["version"])


def private_jwks() -> list[dict[str, Any]]:
    """A fresh RSA-2048 and P-256 key pair for oidc-provider (as private JWKs)."""
    keys: list[dict[str, Any]] = []
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    for kid, alg, jwk_json in (
        ("rs", "RS256", jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key)),
        ("es", "ES256", jwt.algorithms.ECAlgorithm.to_jwk(ec_key)),
    ):
        jwk: dict[str, Any] = json.loads(jwk_json)
        jwk.update(kid=kid, use="sig", alg=alg)
        keys.append(jwk)
    return keys


@contextlib.asynccontextmanager
async def node_server(alg: str, ttl: int) -> AsyncIterator[dict[str, Any]]:
    """node oidc-provider signing access tokens with ``alg``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise RuntimeError("node and npm are needed for the oidc-provider baseline")
    home, version = await asyncio.to_thread(oidc_provider_dir, npm)
    port, secret = free_port(), base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    env = {
        **os.environ,
        "PORT": str(port),
        "SECRET": secret,
        "ALG": alg,
        "TTL": str(ttl),
        "SCOPE": SCOPE,
        "JWKS": json.dumps(private_jwks()),
        "NODE_ENV": "production",
    }
    with child_process([node, "server.mjs"], env, cwd=str(home)) as proc:
        url = f"http://127.0.0.1:{port}"
        await wait_http(f"{url}/.well-known/openid-configuration", proc)
        yield {
            "name": "oidc_provider",
            "version": version,
            "issuer": url,
            "jwks_uri": f"{url}/jwks",
            "token_url": f"{url}/token",
            "auth": ("bench", secret),
            "pid": proc.pid,
            "idle_rss_mib": round(rss_kib(proc.pid) / 1024, 1),
        }


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
    with child_process([sys.executable, "-m", "identity"], env) as proc:
        await wait_http(f"{url}/readyz", proc)
        await asyncio.sleep(1.0)
        backend = creds["clients"]["northwind-backend"]
        yield {
            "name": "ours",
            "env": env,
            "issuer": f"{url}/eco/acme",
            "jwks_uri": f"{url}/eco/acme/jwks",
            "token_url": f"{url}/eco/acme/token",
            "auth": (backend["client_id"], backend["client_secret"]),
            "people": list(creds["people"]),
            "pid": proc.pid,
            "idle_rss_mib": round(rss_kib(proc.pid) / 1024, 1),
        }


async def sample_token(server: dict[str, Any]) -> dict[str, Any]:
    """One token from ``server``, its signature checked against the server's JWKS."""
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            server["token_url"],
            auth=server["auth"],
            data={"grant_type": "client_credentials", "scope": SCOPE},
        )
        if resp.status_code != 200:
            raise RuntimeError(f"{server['name']}: token request answered {resp.status_code}")
        body = resp.json()
        token = body["access_token"]
        header = jwt.get_unverified_header(token)
        keys = (await http.get(server["jwks_uri"])).json()["keys"]
    jwk = jwt.PyJWK.from_dict(next(k for k in keys if k["kid"] == header["kid"]))
    claims = jwt.decode(token, jwk.key, [header["alg"]], options={"verify_aud": False})
    return {"header": header, "claims": claims, "body": body}


async def use_alg(ours: dict[str, Any], alg: str) -> int:
    """Switch our ecosystem's access-token algorithm (CLI; the server follows within its
    cache lifetime); the token lifetime in seconds."""
    argv = [sys.executable, "-m", "identity", "set-access-token-alg", "--eco", "acme"]
    await asyncio.to_thread(
        subprocess.run, [*argv, "--alg", alg], env=ours["env"], check=True, capture_output=True
    )
    deadline = time.monotonic() + 30
    while True:
        sample = await sample_token(ours)
        if sample["header"]["alg"] == alg:
            return int(sample["claims"]["exp"] - sample["claims"]["iat"])
        if time.monotonic() > deadline:
            raise RuntimeError(f"our server still signs {sample['header']['alg']}, not {alg}")
        await asyncio.sleep(0.5)


async def check_equivalent(ours: dict[str, Any], node: dict[str, Any], alg: str) -> None:
    """Both servers answer the same request with a JWT access token of the same shape."""
    mine, theirs = await sample_token(ours), await sample_token(node)
    for name, sample in (("ours", mine), ("oidc-provider", theirs)):
        header, claims = sample["header"], sample["claims"]
        if header["alg"] != alg or header.get("typ") != "at+jwt":
            raise RuntimeError(f"{name} signs {header} instead of an {alg} at+jwt")
        if claims["scope"] != SCOPE or sample["body"]["token_type"] != "Bearer":
            raise RuntimeError(f"{name} granted {claims['scope']!r} for {SCOPE!r}")
    ttl = {s["claims"]["exp"] - s["claims"]["iat"] for s in (mine, theirs)}
    if len(ttl) != 1:
        raise RuntimeError(f"token lifetimes differ: {ttl}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process, its threads and its descendants (Linux
    /proc)."""
    ticks = 0
    for proc in process_tree(pid):
        fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def wrk(server: dict[str, Any], seconds: float, script: str) -> dict[str, Any]:
    user, secret = server["auth"]
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    args = ["-t1", f"-c{CONNECTIONS}", f"-d{round(seconds)}s", "--timeout", "5s", "-s", script]
    proc = await asyncio.create_subprocess_exec(
        "wrk", *args, "-H", f"Authorization: Basic {basic}", server["token_url"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out = (await proc.communicate())[0].decode()
    done = re.search(r"(\d+) requests in", out)
    if done is None:
        raise RuntimeError(f"wrk failed against {server['name']}: {out[-300:]!r}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    return {
        "requests": int(done.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


async def pyload(server: dict[str, Any], seconds: float, _script: str) -> dict[str, Any]:
    """The fallback generator (``bench/_pyload.py``) in its own process."""
    user, secret = server["auth"]
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    headers = {
        "Authorization": f"Basic {basic}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    argv = [server["token_url"], json.dumps(headers), str(seconds), str(CONNECTIONS), FORM]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._pyload", *argv, stdout=subprocess.PIPE
    )
    out = json.loads((await proc.communicate())[0])
    return {"requests": int(out["requests"]), "non_2xx": int(out["non_2xx"]), "socket_errors": ""}


async def load(server: dict[str, Any], seconds: float, script: str) -> dict[str, Any]:
    """Tokens/s from ``server`` and the CPU time its process spent per token meanwhile."""
    generator = wrk if shutil.which("wrk") else pyload
    before, started = cpu_seconds(server["pid"]), time.perf_counter()
    result = await generator(server, seconds, script)
    elapsed = time.perf_counter() - started
    spent = cpu_seconds(server["pid"]) - before
    if result["non_2xx"] or not result["requests"]:
        raise RuntimeError(f"{server['name']}: {result['non_2xx']} of {result} were not 200")
    n = result["requests"]
    return {
        "per_s": round(n / elapsed, 1),
        "cpu_us_per_token": round(spent / n * 1e6, 1),
        **result,
    }


async def cc_rounds(
    ours: dict[str, Any], node: dict[str, Any], rounds: int, seconds: float, script: str
) -> dict[str, Any]:
    """Alternate rounds against both servers; median per-round ratios."""
    await load(ours, 1, script)  # warm-up: caches, JIT, connections
    await load(node, 1, script)
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for i in range(rounds):
        pair = [(ours, mine), (node, theirs)]
        for server, runs in pair if i % 2 == 0 else pair[::-1]:
            runs.append(await load(server, seconds, script))
    rate_ratios = [a["per_s"] / b["per_s"] for a, b in zip(mine, theirs, strict=True)]
    cpu_ratios = [
        b["cpu_us_per_token"] / a["cpu_us_per_token"] for a, b in zip(mine, theirs, strict=True)
    ]
    return {
        "ours_per_s": round(statistics.median(r["per_s"] for r in mine), 1),
        "oidc_provider_per_s": round(statistics.median(r["per_s"] for r in theirs), 1),
        "ratio": round(statistics.median(rate_ratios), 2),
        "ours_cpu_us_per_token": round(statistics.median(r["cpu_us_per_token"] for r in mine), 1),
        "oidc_provider_cpu_us_per_token": round(
            statistics.median(r["cpu_us_per_token"] for r in theirs), 1
        ),
        "cpu_ratio": round(statistics.median(cpu_ratios), 2),
        # cores each server process kept busy (tokens/s x CPU per token): a Python process
        # is held to about one by the GIL, a node process also runs helper threads
        "ours_cores_busy": round(statistics.median(_cores(r) for r in mine), 2),
        "oidc_provider_cores_busy": round(statistics.median(_cores(r) for r in theirs), 2),
        "rounds": {"ours": mine, "oidc_provider": theirs},
    }


def _cores(run: dict[str, Any]) -> float:
    return float(run["per_s"]) * float(run["cpu_us_per_token"]) / 1e6


def signing_floor(alg: str, seconds: float) -> float:
    """Raw signatures per second on one core (``cryptography``): no provider can issue
    more tokens per core than this."""
    if alg == "RS256":
        rkey = rsa.generate_private_key(65537, 2048)

        def sign(data: bytes) -> None:
            rkey.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        ekey = ec.generate_private_key(ec.SECP256R1())

        def sign(data: bytes) -> None:
            ekey.sign(data, ec.ECDSA(hashes.SHA256()))

    data = b"x" * 400  # about a token's signing input
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sign(data)
        count += 1
    return count / (time.perf_counter() - started)


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
    seconds, rounds, n_login = (2.0, 2, 16) if quick else (5.0, 5, 60)
    cores = os.cpu_count() or 1
    generator = f"wrk -t1 -c{CONNECTIONS}" if shutil.which("wrk") else "httpx (bench._pyload)"
    by_alg: dict[str, Any] = {}
    node_info: dict[str, Any] = {}
    with local_nats() as nats_url, tempfile.TemporaryDirectory() as tmp:
        script = str(Path(tmp, "cc.lua"))
        await asyncio.to_thread(Path(script).write_text, WRK_SCRIPT % FORM)
        async with our_server(tmp, nats_url) as ours:
            for alg in ALGORITHMS:
                ttl = await use_alg(ours, alg)
                async with node_server(alg, ttl) as node:
                    await check_equivalent(ours, node, alg)
                    by_alg[alg] = await cc_rounds(ours, node, rounds, seconds, script)
                    by_alg[alg]["signing_floor_per_s_one_core"] = round(
                        await asyncio.to_thread(signing_floor, alg, 0.5 if quick else 1.5)
                    )
                    node_info = {k: node[k] for k in ("version", "idle_rss_mib")}
            logins = await login_rounds(ours, n_login, rounds, cores, 1.0 if quick else 2.0)
            rss_after = round(rss_kib(ours["pid"]) / 1024, 1)
    login_rate = round(statistics.median(r["per_s"] for r in logins["logins"]), 1)
    head = by_alg[ALGORITHMS[0]]
    figures: dict[str, Any] = {
        "client_credentials_algorithm": ALGORITHMS[0],
        "client_credentials_per_s": head["ours_per_s"],
        "oidc_provider_cc_per_s": head["oidc_provider_per_s"],
        "ratio_cc_vs_oidc_provider": head["ratio"],
        "ratio_cc_cpu_per_token_vs_oidc_provider": head["cpu_ratio"],
        "cc_cores_busy": head["ours_cores_busy"],
        "oidc_provider_cc_cores_busy": head["oidc_provider_cores_busy"],
        "rs256_client_credentials_per_s": by_alg["RS256"]["ours_per_s"],
        "rs256_oidc_provider_cc_per_s": by_alg["RS256"]["oidc_provider_per_s"],
        "rs256_ratio_cc_vs_oidc_provider": by_alg["RS256"]["ratio"],
        "rs256_signing_floor_per_s_one_core": by_alg["RS256"]["signing_floor_per_s_one_core"],
        "password_logins_per_s": login_rate,
        "password_logins_per_s_per_core": round(login_rate / cores, 1),
        "ratio_logins_vs_raw_argon2id_verify": logins["ratio_median"],
        "idle_rss_mib": ours["idle_rss_mib"],
        "oidc_provider_idle_rss_mib": node_info.get("idle_rss_mib"),
    }
    return {
        "figures": figures,
        "raw": {
            "client_credentials": by_alg,
            "logins": logins,
            "cores": cores,
            "rss_after_load_mib": rss_after,
            "oidc_provider_version": node_info.get("version"),
            "identity_lean": IdentitySettings().lean,  # PM_IDENTITY_LEAN of this run
        },
        "notes": f"Client credentials: load generator {generator}, {CONNECTIONS} connections, "
        f"{rounds} alternating rounds of {seconds:g} s per server and algorithm "
        f"({', '.join(ALGORITHMS)}; both servers sign with the same one, ES256 is this "
        "provider's default and the headline), median per-round ratios of tokens/s and of "
        "server CPU time per token; every answer was 200. Each of our tokens has its "
        "token.issued audit event committed to the outbox before it is answered (the events "
        "of one group commit joined into one CloudEvents batch row) and published to "
        "JetStream by the relay in the same process; oidc-provider writes nothing. "
        "Password logins are the real login form (CSRF, throttle check, argon2id at the "
        "configured cost, session); oidc-provider has no password store, so logins are "
        "compared with raw argon2id verification on every core, alternated the same way.",
    }
