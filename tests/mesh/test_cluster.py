"""A 3-node NATS cluster from the wheel: services keep answering when a node dies."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from contracts.subjects import DEAD_LETTER_STREAM, EVENT_STREAM, event_filter
from contracts.v1 import system
from mesh.backoff import Backoff
from mesh.client import call
from mesh.consumer import EventConsumer
from mesh.localnats import local_cluster, wait_port
from mesh.nats import connect, ensure_event_stream
from mesh.revocation import RevocationFeed, RevocationList
from mesh.streams import default_replicas, ensure_streams
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory

pytestmark = pytest.mark.slow

T = TypeVar("T")


async def wait_jetstream(client: Client, timeout: float = 30.0) -> None:
    """The deploy step: the streams, once the cluster has a JetStream meta leader."""
    assert await asyncio.wait_for(ensure_streams(client.jetstream(), client), timeout) == 3


class TestClusterFailover:
    async def test_requests_and_events_survive_a_node_loss(
        self, tmp_path: Path, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        with local_cluster(3) as (urls, procs):
            client = await nats.connect(
                urls.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2
            )
            js = client.jetstream()
            await wait_jetstream(client)
            async with run_service(
                "profile",
                ProfileSettings,
                models.metadata,
                handlers.register,
                nats_url=urls,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                verifier=test_keys.verifier(),
            ):
                token = tokens.mint()
                assert (
                    await call(client, system.ECHO, {"eco": "acme", "message": "1"}, token)
                ).message == "1"
                await js.publish("pm.v1.evt.acme.identity.audit", b"{}")
                # Kill the node the test client is connected to.
                victim = next(
                    p
                    for p, port in zip(procs, urls.split(","), strict=True)
                    if client.connected_url
                    and client.connected_url.port == int(port.rsplit(":", 1)[1])
                )
                victim.kill()
                victim.wait(5)
                reply = None
                for _ in range(100):
                    try:
                        reply = await call(
                            client, system.ECHO, {"eco": "acme", "message": "2"}, token, timeout=1
                        )
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
                assert reply is not None and reply.message == "2"
                info = None
                for _ in range(100):
                    try:
                        info = await js.stream_info("PM_EVENTS")
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
                assert info is not None and info.state.messages >= 1
                assert info.config.num_replicas == 3
            await client.close()


class TestStreamReplicas:
    async def test_three_replicas_on_three_nodes_and_r1_raised_in_place(self) -> None:
        with local_cluster(3) as (urls, _procs):
            client = await nats.connect(urls.split(","), max_reconnect_attempts=-1)
            js = client.jetstream()
            try:
                # An event stream as older deployments made it: one replica, with an event
                # and a durable consumer that inherits its stream's replica count.
                await _until(lambda: ensure_event_stream(js, replicas=1))
                # A stream just made may not answer publishes yet (no responders until its
                # leader is placed): publish until it does, once (deduplicated by its id).
                once = {"Nats-Msg-Id": "the-old-event"}
                await _until(
                    lambda: js.publish("pm.v1.evt.acme.identity.audit", b"{}", headers=once)
                )
                await js.add_consumer(
                    EVENT_STREAM, ConsumerConfig(durable_name="old", ack_policy=AckPolicy.EXPLICIT)
                )
                assert (await js.stream_info(EVENT_STREAM)).config.num_replicas == 1

                assert await ensure_streams(js, client) == 3
                for name in (EVENT_STREAM, DEAD_LETTER_STREAM):
                    assert (await js.stream_info(name)).config.num_replicas == 3
                events = await js.stream_info(EVENT_STREAM)
                assert events.state.messages == 1, "raised in place: the event is still there"

                async def consumer_replicated() -> bool:
                    info = await js.consumer_info(EVENT_STREAM, "old")
                    return info.cluster is not None and len(info.cluster.replicas or []) == 2

                await _until(consumer_replicated, want=True)
                assert await ensure_streams(js, client) == 3, "a second run changes nothing"
            finally:
                await client.close()

    async def test_one_replica_on_a_single_server(self, nc: Client) -> None:
        assert default_replicas(nc) == 1
        assert (await nc.jetstream().stream_info(EVENT_STREAM)).config.num_replicas == 1


async def _until(
    attempt: Callable[[], Awaitable[T]], want: T | None = None, timeout: float = 60.0
) -> T:
    """``await attempt()`` until it succeeds (and returns ``want`` when given)."""
    for _ in range(int(timeout / 0.25)):
        try:
            result = await attempt()
            if want is None or result == want:
                return result
        except Exception:
            pass
        await asyncio.sleep(0.25)
    raise AssertionError(f"{attempt} never succeeded")


class TestLeaderLoss:
    async def test_consumer_and_feed_survive_the_stream_leader_killed_and_restarted(
        self, tmp_path: Path
    ) -> None:
        """The node that leads the event stream dies and comes back: the consumer and the
        revocation feed go on in the same tasks, and every event is handled once."""
        from tests.mesh.test_consumer import FAST, Recorder, audit, eventually, revocation
        from tests.mesh.test_consumer import publish_event as publish

        with local_cluster(3) as (urls, procs):
            nc = await connect(urls, "leader-loss")
            js = nc.jetstream()
            await wait_jetstream(nc)
            rec = Recorder(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
            await rec.db.create_all()
            consumer = EventConsumer(
                js, rec.db, rec.inbox, "leader-loss", [event_filter("acme")], rec.handle,
                backoff=Backoff(0.1, 1.0), **FAST,
            )  # fmt: skip
            revoked = RevocationList()
            feed = RevocationFeed(js, revoked, backoff=Backoff(0.1, 1.0), **FAST)
            task = asyncio.create_task(consumer.run())
            await feed.start()
            try:
                events = [audit("acme", f"e{i}") for i in range(3)]
                await publish(js, events[0])
                await eventually(lambda: rec.count(events[0].id), "handled before the loss")

                cluster = (await js.stream_info(EVENT_STREAM)).cluster
                assert cluster is not None and cluster.leader is not None
                victim = int(cluster.leader.removeprefix("n")) - 1
                procs[victim].kill()
                procs[victim].wait(10)
                await publish(js, events[1])
                await publish(js, revocation("acme", "while-down"))
                await eventually(lambda: rec.count(events[1].id), "handled without the leader")

                procs[victim] = subprocess.Popen(
                    procs[victim].args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                port = int(urls.split(",")[victim].rsplit(":", 1)[1])
                wait_port(port)
                await _until(lambda: _all_current(js), want=True)  # the node caught up
                await publish(js, events[2])
                await publish(js, revocation("acme", "after-restart"))
                await eventually(lambda: rec.count(events[2].id), "handled after the restart")
                await eventually(
                    lambda: "while-down" in revoked and "after-restart" in revoked,
                    "every revocation applied",
                )
                await eventually(lambda: consumer.healthy and feed.healthy, "both healthy")
                assert not task.done() and feed.running, "the same tasks went on"
                assert [await rec.count(e.id) for e in events] == [1, 1, 1]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await feed.stop()
                await rec.db.dispose()
                await nc.close()


async def _all_current(js: JetStreamContext) -> bool:
    info = await js.stream_info(EVENT_STREAM)
    replicas = info.cluster.replicas if info.cluster else []
    return len(replicas or []) == 2 and all(r.current for r in replicas or [])
