"""Consumers and the revocation feed that never die silently, readiness that tells the truth,
outages that lose nothing, and dead letters that can be listed and replayed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict

import httpx
import nats
import pytest
from nats.js import JetStreamContext
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import headers
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.subjects import DEAD_LETTER_STREAM, EVENT_STREAM, event_filter, event_subject
from contracts.v1.identity import (
    AuditData,
    AuditEvent,
    RevokedToken,
    TokenRevoked,
    TokenRevokedData,
)
from mesh.backoff import Backoff
from mesh.consumer import EventConsumer, Inbox, RetrySchedule
from mesh.db import Database
from mesh.errors import MeshError
from mesh.localnats import free_port, provision_streams
from mesh.revocation import RevocationFeed, RevocationList
from mesh.runtime import service_runtime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support import infra
from tests.support.outage import NatsNode
from tests.support.services import run_service
from tests.support.tcpproxy import TcpProxy
from tests.support.tokens import TestKeys


class Timing(TypedDict):
    fetch_timeout: float
    check_interval: float


FAST: Timing = {"fetch_timeout": 0.3, "check_interval": 0.3}


class Recorder:
    """A consumer's own database where handled events are counted (one row per handling)."""

    def __init__(self, url: str) -> None:
        self.metadata = MetaData()
        self.seen = Table(
            "seen",
            self.metadata,
            Column("n", Integer, primary_key=True),
            Column("event_id", String(64)),
        )
        self.inbox = Inbox(self.metadata)
        self.db = Database(url, self.metadata)

    async def handle(self, session: AsyncSession, event: EventBase) -> None:
        await session.execute(insert(self.seen).values(event_id=event.id))

    async def count(self, event_id: str | None = None) -> int:
        async with self.db.transaction() as s:
            q = select(func.count()).select_from(self.seen)
            if event_id:
                q = q.where(self.seen.c.event_id == event_id)
            return int((await s.execute(q)).scalar_one())


async def eventually(
    check: Callable[[], Awaitable[object] | object], what: str, timeout: float = 90.0
) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` never happened."""
    for _ in range(int(timeout / 0.1)):
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def publish(js: JetStreamContext, subject: str, data: bytes, msg_id: str) -> None:
    """Publish, retrying while the connection or the stream is coming back."""
    for _ in range(300):
        try:
            await js.publish(subject, data, headers={headers.MSG_ID: msg_id}, timeout=1)
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"could not publish on {subject}")


async def publish_event(js: JetStreamContext, event: EventBase) -> None:
    await publish(
        js, event_subject(event.ecosystem, event.type), event.model_dump_json().encode(), event.id
    )


def audit(eco: str, action: str) -> AuditEvent:
    return AuditEvent(ecosystem=eco, data=AuditData(action=action))


def revocation(eco: str, jti: str) -> TokenRevoked:
    import time

    token = RevokedToken(jti=jti, exp=int(time.time()) + 600)
    return TokenRevoked(ecosystem=eco, data=TokenRevokedData(tokens=[token]))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def eco() -> str:
    """A fresh ecosystem name, so each test sees only its own events."""
    return f"eco{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[NatsNode]:
    """A nats-server of this test's own that the test may stop and start again, with the
    mesh's streams provisioned."""
    server = NatsNode(tmp_path / "nats")
    server.start()
    provision_streams(server.url)
    yield server
    server.stop()


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[Recorder]:
    """A consumer's SQLite database."""
    rec = Recorder(f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}")
    await rec.db.create_all()
    yield rec
    await rec.db.dispose()


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class TestRetrySchedule:
    def test_delays_grow_then_repeat_and_the_default_spans_hours(self) -> None:
        schedule = RetrySchedule((1, 5, 60), max_deliver=6, ack_wait=30)
        assert [schedule.delay(n) for n in range(1, 7)] == [1, 5, 60, 60, 60, 60]
        assert schedule.backoff() == [30, 30, 60], "an unanswered delivery waits ack_wait"
        assert schedule.total() == 1 + 5 + 60 * 3
        assert RetrySchedule().total() > 24 * 3600

    @pytest.mark.parametrize(("delays", "max_deliver"), [((), 3), ((1, 2), 2)])
    def test_refuses_a_schedule_the_server_would(
        self, delays: tuple[int, ...], max_deliver: int
    ) -> None:
        with pytest.raises(ValueError):
            RetrySchedule(delays, max_deliver)


class TestHealing:
    async def test_consumer_and_feed_resume_after_the_server_restarts(
        self, node: NatsNode, recorder: Recorder, eco: str
    ) -> None:
        """The server goes away (both report unhealthy) and comes back: both pull again by
        themselves, in the same task, and nothing published around it is lost."""
        nc = await nats.connect(node.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream()
        consumer = EventConsumer(
            js, recorder.db, recorder.inbox, f"heal-{eco}", [event_filter(eco)],
            recorder.handle, backoff=Backoff(0.1, 0.5), **FAST,
        )  # fmt: skip
        revoked = RevocationList()
        feed = RevocationFeed(js, revoked, backoff=Backoff(0.1, 0.5), **FAST)
        task = asyncio.create_task(consumer.run())
        await feed.start()
        try:
            first = audit(eco, "before")
            await publish_event(js, first)
            await eventually(lambda: recorder.count(first.id), "the first event handled")
            assert consumer.healthy and feed.healthy and feed.caught_up

            node.stop()
            await eventually(lambda: not consumer.healthy, "the consumer reports it cannot pull")
            await eventually(lambda: not feed.healthy, "the feed reports it cannot pull")
            assert consumer.last_error and sample("pm_consumer_up", consumer=consumer.durable) == 0
            await eventually(
                lambda: sample("pm_revocation_feed_age_seconds") >= 1, "the feed's silence shows"
            )
            silent = sample("pm_revocation_feed_age_seconds")
            node.start()
            await eventually(lambda: consumer.healthy and feed.healthy, "both healthy again")
            await eventually(
                lambda: sample("pm_revocation_feed_age_seconds") < silent, "the feed heard again"
            )

            later = audit(eco, "after")
            await publish_event(js, later)
            late = revocation(eco, f"jti-{eco}")
            await publish_event(js, late)
            await eventually(lambda: recorder.count(later.id), "the later event handled")
            await eventually(lambda: f"jti-{eco}" in revoked, "the later revocation applied")
            assert not task.done(), "the same consumer task went on"
            assert (await recorder.count(first.id), await recorder.count(later.id)) == (1, 1)
        finally:
            await stop_task(task)
            await feed.stop()
            await nc.close()

    async def test_a_deleted_consumer_is_made_again(
        self, nats_url: str, recorder: Recorder, eco: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        durable = f"gone-{eco}"
        consumer = EventConsumer(
            js, recorder.db, recorder.inbox, durable, [event_filter(eco)], recorder.handle,
            backoff=Backoff(0.1, 0.5), **FAST,
        )  # fmt: skip
        task = asyncio.create_task(consumer.run())
        try:
            first = audit(eco, "first")
            await publish_event(js, first)
            await eventually(lambda: recorder.count(first.id), "the first event handled")
            await js.delete_consumer(EVENT_STREAM, durable)

            # noticed: unhealthy now, or it said so and has already made the consumer again
            # (with a 0.1 s backoff the unhealthy spell can be shorter than a poll)
            def noticed() -> bool:
                return not consumer.healthy or any(
                    r.getMessage() == "consumer cannot pull; retrying"
                    and getattr(r, "consumer", None) == durable
                    for r in caplog.records
                )

            await eventually(noticed, "the loss noticed")
            second = audit(eco, "second")
            await publish_event(js, second)
            await eventually(lambda: recorder.count(second.id), "the second event handled")
            info = await js.consumer_info(EVENT_STREAM, durable)
            assert info.config.max_deliver == consumer.schedule.max_deliver
            assert await recorder.count(first.id) == 1, "replayed from the start, applied once"
        finally:
            await stop_task(task)
            await nc.close()


class TestReadiness:
    async def test_readyz_fails_while_nats_is_gone_and_recovers_by_itself(
        self, node: NatsNode, tmp_path: Path, test_keys: TestKeys
    ) -> None:
        async with (
            run_service(
                "profile",
                ProfileSettings,
                models.metadata,
                handlers.register,
                nats_url=node.url,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                verifier=test_keys.verifier(),
            ) as rt,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.observe.port}") as http,
        ):
            assert rt.consumers, "profile consumes events"

            async def status() -> int:
                return (await http.get("/readyz")).status_code

            await eventually(lambda: _is(status(), 200), "ready at first")
            node.stop()
            await eventually(lambda: _is(status(), 503), "not ready without NATS")
            reasons = (await http.get("/readyz")).json()["reasons"]
            assert any("nats" in r for r in reasons)
            node.start()
            await eventually(lambda: _is(status(), 200), "ready again by itself")
            assert all(c.healthy for c in rt.consumers) and rt.revocations.healthy

    async def test_waits_for_the_streams_not_ready_meanwhile(
        self, tmp_path: Path, test_keys: TestKeys
    ) -> None:
        """Started before the deploy step made the streams, a service waits for them,
        answering /readyz 503 meanwhile, and starts once they exist."""
        server = NatsNode(tmp_path / "nats")
        server.start()
        port = free_port()
        settings = ProfileSettings(
            nats_url=server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            environment="test",
            observe_port=port,
        )

        async def start() -> None:
            async with service_runtime(
                "profile", settings, models.metadata, test_keys.verifier(), setup_logging=False
            ):
                pass

        starting = asyncio.create_task(start())
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                await eventually(lambda: _is(http.get("/readyz"), 503), "not ready, waiting")
                assert (await http.get("/readyz")).json()["reasons"] == ["starting"]
            assert not starting.done(), "it waits rather than exits"
            provision_streams(server.url)
            await asyncio.wait_for(starting, 60)
        finally:
            await stop_task(starting)
            server.stop()


async def _is(value: Awaitable[int | httpx.Response], wanted: int) -> bool:
    try:
        got = await value
    except httpx.HTTPError:
        return False
    return (got.status_code if isinstance(got, httpx.Response) else got) == wanted


@pytest.fixture
async def proxied_postgres(postgres_admin_url: str | None) -> AsyncIterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL database reached through a TCP proxy the test can cut."""
    if not postgres_admin_url:
        pytest.skip("a database outage needs PostgreSQL: set PARTNERMESH_TEST_POSTGRES_URL")
    url, name = await infra.create_pg_database(postgres_admin_url)
    target = make_url(url)
    proxy = TcpProxy([(target.host or "127.0.0.1", target.port or 5432)], "db").start()
    proxied = target.set(host="127.0.0.1", port=proxy.port)
    yield proxied.render_as_string(hide_password=False), proxy
    proxy.close()
    await infra.drop_pg_database(postgres_admin_url, name)


class TestOutage:
    async def test_a_database_outage_loses_nothing(
        self, nats_url: str, proxied_postgres: tuple[str, TcpProxy], eco: str
    ) -> None:
        """The consumer's database is unreachable for longer than its whole retry schedule
        would last: the consumer holds the event in hand (no delivery spent), says it is
        down, and handles everything once, at once, when the database is back."""
        url, proxy = proxied_postgres
        rec = Recorder(url)
        await rec.db.create_all()
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        durable = f"outage-{eco}"
        schedule = RetrySchedule((0.2, 0.4), max_deliver=3, ack_wait=3)
        consumer = EventConsumer(
            js, rec.db, rec.inbox, durable, [event_filter(eco)], rec.handle,
            schedule=schedule, **FAST,
        )  # fmt: skip
        task = asyncio.create_task(consumer.run())
        try:
            first = audit(eco, "before")
            await publish_event(js, first)
            await eventually(lambda: rec.count(first.id), "handled before the outage")
            proxy.cut()
            during = [audit(eco, f"during-{i}") for i in range(5)]
            for event in during:
                await publish_event(js, event)
            await eventually(lambda: not consumer.healthy, "the consumer says it is down")
            assert sample("pm_consumer_up", consumer=durable) == 0
            # Longer than the schedule (3 deliveries, 0.6 s of delays) and than the ack wait.
            await asyncio.sleep(3 * schedule.ack_wait)
            proxy.restore()
            await eventually(lambda: _counts(rec, during, 1), "all handled once after the outage")
            await eventually(lambda: consumer.healthy, "the consumer is up again")
            assert sample("pm_dead_letters_total", consumer=durable, reason="exhausted") == 0
            assert await rec.count() == 1 + len(during)
        finally:
            await stop_task(task)
            await nc.close()
            await rec.db.dispose()


async def _counts(rec: Recorder, events: Sequence[EventBase], wanted: int) -> bool:
    return all([await rec.count(e.id) == wanted for e in events])


async def cli(*args: str) -> tuple[int, str]:
    """``partnermesh`` as a real process: (exit code, standard output)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    assert b"Traceback" not in err, err.decode()
    return proc.returncode, out.decode()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


class TestDeadLetters:
    async def test_poison_goes_at_once_lists_and_replays(
        self, nats_url: str, recorder: Recorder, eco: str
    ) -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        durable = f"dl-{eco}"
        fixed = asyncio.Event()

        async def handler(session: AsyncSession, event: EventBase) -> None:
            if event.data.action == "poison" and not fixed.is_set():
                raise MeshError(ErrorCode.VALIDATION_FAILED, "cannot take this one")
            await recorder.handle(session, event)

        consumer = EventConsumer(
            js, recorder.db, recorder.inbox, durable, [event_filter(eco)], handler,
            process="testproc", **FAST,
        )  # fmt: skip
        replays = await consumer.serve_replays(nc)
        task = asyncio.create_task(consumer.run())
        try:
            good, poison, after = audit(eco, "good"), audit(eco, "poison"), audit(eco, "after")
            for event in (good, poison):
                await publish_event(js, event)
            await publish(js, event_subject(eco, good.type), b'{"not": "an event"}', f"u-{eco}")
            await publish_event(js, after)
            await eventually(lambda: _counts(recorder, [good, after], 1), "the stream moved on")

            async def listed() -> list[dict[str, Any]]:
                code, out = await cli("dead-letters", "list", "--json", "--nats-url", nats_url,
                                      "--consumer", durable)  # fmt: skip
                assert code == 0
                return json_lines(out)

            letters = await listed()
            by_reason = {letter["reason"]: letter for letter in letters}
            assert sorted(by_reason) == ["rejected", "undecodable"]
            rejected = by_reason["rejected"]
            assert rejected["event_id"] == poison.id and rejected["deliveries"] == "1"
            assert "cannot take this one" in rejected["error"]
            assert rejected["process"] == "testproc" and rejected["consumer"] == durable
            assert rejected["original_subject"] == event_subject(eco, poison.type)
            assert sample("pm_dead_letters_total", consumer=durable, reason="rejected") == 1
            assert await recorder.count(poison.id) == 0

            code, out = await cli(
                "dead-letters", "show", str(rejected["seq"]), "--nats-url", nats_url
            )
            assert code == 0 and poison.id in out and "cannot take this one" in out

            # Still failing: replay says so and keeps the letter.
            code, out = await cli("dead-letters", "replay", str(rejected["seq"]), "--json",
                                  "--nats-url", nats_url)  # fmt: skip
            assert code == 1 and json_lines(out)[0]["outcome"] == "rejected"
            assert len(await listed()) == 2

            fixed.set()  # the handler is fixed: replay hands the event back, once
            code, out = await cli("dead-letters", "replay", str(rejected["seq"]), "--json",
                                  "--nats-url", nats_url)  # fmt: skip
            assert code == 0 and json_lines(out)[0]["outcome"] == "ok"
            assert await recorder.count(poison.id) == 1
            assert [letter["reason"] for letter in await listed()] == ["undecodable"]
            code, _ = await cli("dead-letters", "replay", str(rejected["seq"]),
                                "--nats-url", nats_url)  # fmt: skip
            assert code == 1, "gone once replayed"

            code, out = await cli("dead-letters", "replay", "--consumer", durable, "--json",
                                  "--nats-url", nats_url)  # fmt: skip
            assert code == 1 and json_lines(out)[0]["outcome"] == "undecodable"
        finally:
            await stop_task(task)
            await replays.unsubscribe()
            await nc.close()

    async def test_exhausting_the_schedule_makes_a_dead_letter(
        self, nats_url: str, recorder: Recorder, eco: str
    ) -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        durable = f"ex-{eco}"

        async def handler(session: AsyncSession, event: EventBase) -> None:
            if event.data.action == "never":
                raise ConnectionError("the peer never answers")
            await recorder.handle(session, event)

        consumer = EventConsumer(
            js, recorder.db, recorder.inbox, durable, [event_filter(eco)], handler,
            schedule=RetrySchedule((0.1, 0.2), max_deliver=3, ack_wait=5), **FAST,
        )  # fmt: skip
        task = asyncio.create_task(consumer.run())
        try:
            stuck, fine = audit(eco, "never"), audit(eco, "fine")
            await publish_event(js, stuck)
            await publish_event(js, fine)
            await eventually(
                lambda: sample("pm_dead_letters_total", consumer=durable, reason="exhausted") == 1,
                "the event given up on after its last delivery",
            )
            code, out = await cli("dead-letters", "list", "--json", "--nats-url", nats_url,
                                  "--consumer", durable)  # fmt: skip
            (letter,) = json_lines(out)
            assert code == 0
            assert letter["deliveries"] == "3" and "never answers" in letter["error"]
            assert json.loads(await _body(js, letter["seq"]))["id"] == stuck.id
            assert await recorder.count(fine.id) == 1
        finally:
            await stop_task(task)
            await nc.close()


async def _body(js: JetStreamContext, seq: int) -> bytes:
    from mesh import deadletters

    letter = await deadletters.get(js, seq)
    assert letter is not None
    return letter.data


class TestExhaustedUnseen:
    async def test_an_event_never_acknowledged_becomes_a_dead_letter(
        self, nats_url: str, recorder: Recorder, eco: str
    ) -> None:
        """Every delivery dies with its process (nothing acks, nothing naks): JetStream's
        max-deliveries advisory has a replica put the event on the dead-letter stream."""
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        durable = f"crash-{eco}"
        consumer = EventConsumer(
            js, recorder.db, recorder.inbox, durable, [event_filter(eco)], recorder.handle,
            process="testproc", schedule=RetrySchedule((0.5,), max_deliver=2, ack_wait=0.5),
        )  # fmt: skip
        watch = await consumer.watch_exhausted(nc)
        await js.add_consumer(EVENT_STREAM, consumer.config())
        crashing = await js.pull_subscribe_bind(durable=durable, stream=EVENT_STREAM)
        try:
            lost = audit(eco, "crashes-every-time")
            await publish_event(js, lost)
            for delivery in (1, 2):  # taken, never answered
                (msg,) = await crashing.fetch(1, timeout=30)
                assert msg.metadata.num_delivered == delivery

            async def exhausted() -> bool:
                # The server gives up (and advises) when a pull asks for more: keep asking.
                with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
                    extra = await crashing.fetch(1, timeout=0.5)
                    assert not extra, "never delivered beyond max_deliver"
                return sample("pm_dead_letters_total", consumer=durable, reason="exhausted") == 1

            await eventually(exhausted, "the advisory turned into a dead letter")
            code, out = await cli("dead-letters", "list", "--json", "--nats-url", nats_url,
                                  "--consumer", durable)  # fmt: skip
            (letter,) = json_lines(out)
            assert code == 0 and letter["deliveries"] == "2" and letter["reason"] == "exhausted"
            assert json.loads(await _body(js, letter["seq"]))["id"] == lost.id
        finally:
            await watch.unsubscribe()
            await crashing.unsubscribe()
            await nc.close()


class TestStreamsCommand:
    async def test_creates_the_streams_once_and_changes_nothing_after(self, tmp_path: Path) -> None:
        server = NatsNode(tmp_path / "nats")
        server.start()
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.stream_info(EVENT_STREAM)
            code, _ = await cli("nats", "streams", "--url", server.url, "--replicas", "3")
            assert code == 1, "one server cannot hold three replicas: refused, not lowered"
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.stream_info(EVENT_STREAM)
            for _ in range(2):
                code, out = await cli("nats", "streams", "--url", server.url)
                assert code == 0 and "1 replica" in out
            for name in (EVENT_STREAM, DEAD_LETTER_STREAM):
                info = await js.stream_info(name)
                assert info.config.num_replicas == 1 and info.config.duplicate_window == 600
        finally:
            await nc.close()
            server.stop()


class TestMetrics:
    async def test_lag_and_health_per_consumer(
        self, nats_url: str, recorder: Recorder, eco: str
    ) -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        durable = f"lag-{eco}"
        release = asyncio.Event()

        async def handler(session: AsyncSession, event: EventBase) -> None:
            await release.wait()
            await recorder.handle(session, event)

        events = [audit(eco, f"e{i}") for i in range(5)]
        for event in events:
            await publish_event(js, event)
        consumer = EventConsumer(
            js, recorder.db, recorder.inbox, durable, [event_filter(eco)], handler, batch=1,
            **FAST,
        )  # fmt: skip
        task = asyncio.create_task(consumer.run())
        try:
            await eventually(
                lambda: sample("pm_consumer_pending", consumer=durable) == len(events),
                "the backlog measured",
            )
            assert sample("pm_consumer_up", consumer=durable) == 1
            release.set()
            await eventually(lambda: _counts(recorder, events, 1), "the backlog handled")
            await eventually(
                lambda: sample("pm_consumer_pending", consumer=durable) == 0, "no lag left"
            )
        finally:
            await stop_task(task)
            await nc.close()
        assert sample("pm_consumer_up", consumer=durable) == 0, "a stopped consumer is down"
