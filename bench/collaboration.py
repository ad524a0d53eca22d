"""Forum posts per second end to end: request over NATS → service → outbox → JetStream.

Baseline, measured in the same run on the same NATS and with the same token checks:
the round-trip rate of the echo operation (a request that touches no database). The
post rate counts a post as done when its ``content_created`` event has reached
JetStream (seen on the event subject), so the figure includes the transaction, the
outbox relay and the stream write; the latency from a post being accepted (reply
received) to its event being published is reported as p50/p99.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from typing import Any

import jwt
import nats
from cryptography.hazmat.primitives.asymmetric import rsa
from nats.aio.client import Client

from contracts.claims import ALL_SCOPES, DEFAULT_AUDIENCE, Role
from contracts.registry import decode_event
from contracts.subjects import event_subject
from contracts.v1 import collaboration as c
from contracts.v1 import system
from mesh.client import call
from mesh.localnats import local_nats
from mesh.runtime import VERSION, service_runtime
from mesh.service import Call, MeshService
from mesh.tokens import StaticKeys, TokenVerifier, issuer_for
from services.collaboration import handlers, models
from services.collaboration.settings import CollaborationSettings

IDENTITY = "http://identity.bench"
ECO = "bench"
CONCURRENCY = 16


class Signer:
    """A throwaway signing key and the verifier that trusts it."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update(kid="bench", use="sig", alg="RS256")
        self.verifier = TokenVerifier(
            StaticKeys({issuer_for(IDENTITY, ECO): [jwk]}), IDENTITY, DEFAULT_AUDIENCE
        )

    def token(self, sub: str, partner: str | None, roles: list[Role]) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer_for(IDENTITY, ECO), "sub": sub, "aud": DEFAULT_AUDIENCE, "iat": now,
            "exp": now + 3600, "jti": uuid.uuid4().hex, "client_id": "bench",
            "scope": " ".join(sorted(ALL_SCOPES)), "eco": ECO, "partner": partner,
            "roles": [str(r) for r in roles], "preferred_username": sub,
        }  # fmt: skip
        return jwt.encode(claims, self.key, "RS256", headers={"typ": "at+jwt", "kid": "bench"})


async def echo_service(nc: Client, verifier: TokenVerifier) -> MeshService:
    """The baseline: the echo operation served with the same service base and token checks."""
    service = MeshService(nc, "profile", VERSION, verifier)

    async def echo(call: Call, req: system.EchoRequest) -> system.EchoReply:
        assert call.claims is not None
        return system.EchoReply(
            message=req.message, eco=req.eco, sub=call.claims.sub,
            partner=call.claims.partner, client_id=call.claims.client_id, service="profile",
            instance="bench",
        )  # fmt: skip

    service.register(system.ECHO, echo)
    await service.start()
    return service


async def run_parallel(total: int, work: Any) -> float:
    """Run ``work(i)`` for i in range(total) with CONCURRENCY workers; return seconds taken."""
    queue = iter(range(total))

    async def worker() -> None:
        for i in queue:
            await work(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def echo_rate(nc: Client, token: str, total: int) -> float:
    async def one(_: int) -> None:
        await call(nc, system.ECHO, {"eco": ECO, "message": "ping"}, token)

    return total / await run_parallel(total, one)


async def post_rate(
    nc: Client, tokens: list[str], threads: list[str], total: int
) -> dict[str, Any]:
    accepted: dict[str, float] = {}
    published: dict[str, float] = {}
    all_seen = asyncio.Event()

    async def on_event(msg: Any) -> None:
        event = decode_event(msg.data)
        if event.data.kind == "post":
            published[event.data.content_id] = time.perf_counter()
            if len(published) >= total:
                all_seen.set()

    sub = await nc.subscribe(
        event_subject(ECO, c.ContentCreated.model_fields["type"].default), cb=on_event
    )

    async def one(i: int) -> None:
        body = f"Post {i}: pallet **capacity** on the Rotterdam lane, week {i % 52}."
        token, thread = tokens[i % len(tokens)], threads[i % len(threads)]
        reply = await call(nc, c.CREATE_POST, {"eco": ECO, "thread": thread, "body": body}, token)
        accepted[reply.id] = time.perf_counter()

    started = time.perf_counter()
    await run_parallel(total, one)
    await asyncio.wait_for(all_seen.wait(), 120)
    elapsed = max(published.values()) - started
    await sub.unsubscribe()
    lags = sorted(published[k] - accepted[k] for k in accepted)
    return {
        "posts_per_s": total / elapsed,
        "accept_to_published_ms_p50": 1000 * statistics.median(lags),
        "accept_to_published_ms_p99": 1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))],
    }


async def setup_forum(nc: Client, signer: Signer) -> tuple[list[str], list[str]]:
    operator = signer.token("olivia", "acme-hq", [Role.OPERATOR])
    await call(
        nc, c.CREATE_CATEGORY, {"eco": ECO, "slug": "logistics", "name": "Logistics"}, operator
    )
    people = [("nadia", "northwind"), ("carlos", "contoso"), ("fatima", "fabrikam")]
    tokens = [signer.token(sub, partner, [Role.MEMBER]) for sub, partner in people]
    threads = []
    for i in range(10):
        req = {"eco": ECO, "category": "logistics", "title": f"Lane {i}", "body": "Capacity?"}
        threads.append((await call(nc, c.CREATE_THREAD, req, tokens[i % 3])).id)
    return tokens, threads


async def measure(nats_url: str, database_url: str, quick: bool) -> dict[str, Any]:
    signer = Signer()
    settings = CollaborationSettings(
        nats_url=nats_url, database_url=database_url, environment="test"
    )
    async with service_runtime(
        "collaboration", settings, models.metadata, verifier=signer.verifier, setup_logging=False
    ) as rt:
        handlers.register(rt)
        await rt.start()
        nc = await nats.connect(nats_url)
        echo = await echo_service(await nats.connect(nats_url), signer.verifier)
        try:
            tokens, threads = await setup_forum(nc, signer)
            n_echo, n_posts = (500, 300) if quick else (5000, 3000)
            await echo_rate(nc, tokens[0], 100)  # warm up
            baseline = await echo_rate(nc, tokens[0], n_echo)
            posts = await post_rate(nc, tokens, threads, n_posts)
        finally:
            await echo.stop()
            await echo.nc.drain()
            await nc.drain()
    return {
        "baseline": "echo round trips per second (same NATS, same token checks, no database)",
        "engine": database_url.split(":", 1)[0],
        "concurrency": CONCURRENCY,
        "posts": n_posts,
        "echo_per_s": round(baseline, 1),
        "posts_per_s": round(posts["posts_per_s"], 1),
        "ratio_posts_to_echo": round(posts["posts_per_s"] / baseline, 3),
        "accept_to_published_ms_p50": round(posts["accept_to_published_ms_p50"], 2),
        "accept_to_published_ms_p99": round(posts["accept_to_published_ms_p99"], 2),
    }


async def run(quick: bool) -> dict[str, Any]:
    database_url = os.environ.get("PM_BENCH_DATABASE_URL", "")
    with tempfile.TemporaryDirectory(prefix="pm-bench-collab-") as tmp, local_nats() as url:
        return await measure(url, database_url or f"sqlite+aiosqlite:///{tmp}/collab.db", quick)
