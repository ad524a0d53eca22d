"""Forum posts per second end to end: request over NATS → service → outbox → JetStream.

Baseline, measured in the same run on the same NATS and with the same token checks:
the round-trip rate of the echo operation (a request that touches no database), before
and after the posts (their mean is the baseline). The
post rate counts a post as done when its ``content_created`` event has reached
JetStream (seen on the event subject), so the figure includes the transaction, the
outbox relay and the stream write; the latency from a post being accepted (reply
received) to its event being published is reported as p50/p99.

Event → card: the profile service's tag-cloud consumer (``profile-collaboration``) takes
the content events in stream order and acknowledges each once its transaction (the
person's and the company's cloud sums) is committed, so a hover card shows the post from
that moment. The bench follows the consumer's acknowledgement floor (polled every
``CARD_POLL_S``) and reports, per post, the time from its event reaching the stream to
its card being up to date (p50/p99, within one poll), and the rate at which cards caught
up.

The collaboration and profile (echo) services run as their own processes, as under
``make run``, on a nats-server from the wheel; tokens are signed by a throwaway key
served as an issuer's JWKS. SQLite by default; ``PM_BENCH_DATABASE_URL`` selects
another database (e.g. an empty PostgreSQL database).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import jwt
import nats
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contracts.claims import ALL_SCOPES, DEFAULT_AUDIENCE, Role
from contracts.registry import decode_event
from contracts.subjects import EVENT_STREAM, event_subject
from contracts.v1 import collaboration as c
from contracts.v1 import system
from mesh.client import call
from mesh.localnats import child_process, free_port, local_nats
from mesh.tokens import issuer_for

ECO = "bench"
CONCURRENCY = 16
CARD_CONSUMER = "profile-collaboration"
CARD_POLL_S = 0.025
ROOT = Path(__file__).resolve().parent.parent


class Signer:
    """A throwaway signing key, and a tiny issuer serving its discovery document and JWKS."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwk.update(kid="bench", use="sig", alg="RS256")
        self.port = free_port()
        self.identity_url = f"http://127.0.0.1:{self.port}"
        self.issuer = issuer_for(self.identity_url, ECO)

    def app(self) -> Starlette:
        async def discovery(_: Request) -> JSONResponse:
            return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks"})

        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse({"keys": [self.jwk]})

        return Starlette(
            routes=[
                Route(f"/eco/{ECO}/.well-known/openid-configuration", discovery),
                Route(f"/eco/{ECO}/jwks", jwks),
            ]
        )

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110  (uvicorn offers no event to wait on)
            await asyncio.sleep(0.01)
        try:
            yield
        finally:
            server.should_exit = True
            await task

    def token(self, sub: str, partner: str | None, roles: list[Role]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": DEFAULT_AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "client_id": "bench",
            "scope": " ".join(sorted(ALL_SCOPES)),
            "eco": ECO,
            "partner": partner,
            "roles": [str(r) for r in roles],
            "preferred_username": sub,
        }
        return jwt.encode(claims, self.key, "RS256", headers={"typ": "at+jwt", "kid": "bench"})


@contextlib.contextmanager
def service_process(name: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m services.<name>`` as its own process (its own event loop and CPU)."""
    prefix = f"PM_{name.upper()}_"
    full = {**os.environ, **{prefix + k: v for k, v in env.items()}}
    with child_process([sys.executable, "-m", f"services.{name}"], full, str(ROOT), 15) as proc:
        yield proc


async def wait_ready(nc: Client, name: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            await nc.request(f"$SRV.PING.{name}", b"", timeout=0.5)
            return
        except (NoRespondersError, NatsTimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} service did not start") from None
            await asyncio.sleep(0.1)


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


async def card_floor(nc: Client) -> int:
    """How many content events the tag-cloud consumer has acknowledged (in stream order)."""
    info = await nc.jetstream().consumer_info(EVENT_STREAM, CARD_CONSUMER)
    return int(info.ack_floor.consumer_seq if info.ack_floor else 0)


async def cards_settled(nc: Client) -> int:
    """Wait until the tag-cloud consumer has nothing pending; its ack floor then."""
    deadline = time.monotonic() + 60
    while True:
        info = await nc.jetstream().consumer_info(EVENT_STREAM, CARD_CONSUMER)
        if not info.num_pending and not info.num_ack_pending:
            return int(info.ack_floor.consumer_seq if info.ack_floor else 0)
        if time.monotonic() > deadline:
            raise RuntimeError("the tag-cloud consumer did not catch up with the setup")
        await asyncio.sleep(0.05)


async def follow_cards(nc: Client, base: int, total: int, applied: list[float]) -> None:
    """Append the time each of the next ``total`` content events was applied to the clouds."""
    while len(applied) < total:
        floor = await card_floor(nc) - base
        stamp = time.perf_counter()
        applied.extend([stamp] * (min(floor, total) - len(applied)))
        await asyncio.sleep(CARD_POLL_S)


async def post_rate(
    nc: Client, tokens: list[str], threads: list[str], total: int
) -> dict[str, Any]:
    accepted: dict[str, float] = {}
    published: dict[str, float] = {}
    order: list[str] = []  # content events in stream order (one publisher, in order)
    all_seen = asyncio.Event()
    base = await cards_settled(nc)
    applied: list[float] = []

    async def on_event(msg: Any) -> None:
        event = decode_event(msg.data)
        if event.data.kind == "post":
            published[event.data.content_id] = time.perf_counter()
            order.append(event.data.content_id)
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
    cards = asyncio.create_task(follow_cards(nc, base, total, applied))
    await run_parallel(total, one)
    await asyncio.wait_for(all_seen.wait(), 120)
    elapsed = max(published.values()) - started
    await sub.unsubscribe()
    await asyncio.wait_for(cards, 600)
    lags = sorted(published[k] - accepted[k] for k in accepted)
    to_card = sorted(at - published[k] for k, at in zip(order, applied, strict=True))
    return {
        "posts_per_s": total / elapsed,
        "accepted_per_s": total / (max(accepted.values()) - started),
        "accept_to_published_ms_p50": 1000 * statistics.median(lags),
        "accept_to_published_ms_p99": 1000 * percentile(lags, 0.99),
        "cards_per_s": total / (applied[-1] - started),
        "event_to_card_ms_p50": 1000 * statistics.median(to_card),
        "event_to_card_ms_p99": 1000 * percentile(to_card, 0.99),
    }


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


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


async def measure(nats_url: str, signer: Signer, quick: bool) -> dict[str, Any]:
    nc = await nats.connect(nats_url)
    try:
        await wait_ready(nc, "collaboration")
        await wait_ready(nc, "profile")
        tokens, threads = await setup_forum(nc, signer)
        n_echo, n_posts = (500, 300) if quick else (5000, 3000)
        await echo_rate(nc, tokens[0], 100)  # warm up (JWKS fetch, connections)
        # The echo rate before and after the posts, averaged: on a loaded machine the load
        # drifts, and one side alone would skew the ratio.
        before = await echo_rate(nc, tokens[0], n_echo)
        posts = await post_rate(nc, tokens, threads, n_posts)
        after = await echo_rate(nc, tokens[0], n_echo)
        baseline = (before + after) / 2
    finally:
        await nc.drain()
    return {
        "baseline": "echo round trips/s (profile service process, same NATS, same token checks)",
        "concurrency": CONCURRENCY,
        "posts": n_posts,
        "echo_per_s": round(baseline, 1),
        "echo_per_s_before_after": [round(before, 1), round(after, 1)],
        "posts_per_s": round(posts["posts_per_s"], 1),
        "ratio_posts_to_echo": round(posts["posts_per_s"] / baseline, 3),
        "posts_accepted_per_s": round(posts["accepted_per_s"], 1),
        "accept_to_published_ms_p50": round(posts["accept_to_published_ms_p50"], 2),
        "accept_to_published_ms_p99": round(posts["accept_to_published_ms_p99"], 2),
        "cards_per_s": round(posts["cards_per_s"], 1),
        "event_to_card_ms_p50": round(posts["event_to_card_ms_p50"], 2),
        "event_to_card_ms_p99": round(posts["event_to_card_ms_p99"], 2),
    }


async def run(quick: bool) -> dict[str, Any]:
    signer = Signer()
    with tempfile.TemporaryDirectory(prefix="pm-bench-collab-") as tmp, local_nats() as url:
        database_url = os.environ.get("PM_BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/c.db"
        common = {"NATS_URL": url, "IDENTITY_URL": signer.identity_url, "LOG_LEVEL": "WARNING"}
        async with signer.serving():
            with (
                service_process("collaboration", {**common, "DATABASE_URL": database_url}),
                service_process(
                    "profile", {**common, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/p.db"}
                ),
            ):
                result = await measure(url, signer, quick)
        result["engine"] = database_url.split(":", 1)[0]
        return result
