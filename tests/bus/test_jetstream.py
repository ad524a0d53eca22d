"""What each process needs works under its grants: durable consumers (create, fetch,
ack), the revocation feed (ordered consumer), publish with PubAck, request/reply
through the per-process inbox, ``$SRV`` discovery, dead letters and their replay."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, ServiceConfig

from contracts.bus import (
    ADMIN,
    CONSUMERS,
    OPS,
    REBUILD,
    REVOCATION_READERS,
    Consumer,
    event_owner,
    inbox_prefix,
)
from contracts.headers import DLQ_CONSUMER, DLQ_PROCESS
from contracts.registry import operations_of
from contracts.subjects import (
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    dead_letter_replay_subject,
    dead_letter_subject,
    event_filter,
    event_subject,
)
from contracts.v1.identity import RevokedToken, TokenRevoked, TokenRevokedData
from mesh.client import request_raw
from mesh.deadletters import DeadLetter, replay
from mesh.revocation import RevocationFeed, RevocationList
from tests.bus.conftest import ConnectAs

CALL_TIMEOUT = 2.0


def revocation(jti: str) -> TokenRevoked:
    data = TokenRevokedData(tokens=[RevokedToken(jti=jti, exp=int(time.time()) + 3600)])
    return TokenRevoked(ecosystem="acme", data=data)


@pytest.mark.parametrize("declared", CONSUMERS, ids=lambda c: c.durable)
class TestDurableConsumers:
    async def test_producer_publishes_consumer_fetches_and_acks(
        self, declared: Consumer, connect_as: ConnectAs
    ) -> None:
        consumer = await connect_as(declared.process)
        js = consumer.nc.jetstream()
        await js.stream_info(EVENT_STREAM)
        config = ConsumerConfig(
            durable_name=declared.durable,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subjects=declared.filter_subjects,
        )
        await js.add_consumer(EVENT_STREAM, config)
        sub = await js.pull_subscribe_bind(durable=declared.durable, stream=EVENT_STREAM)

        type_ = declared.events[0]
        producer = await connect_as(event_owner(type_))
        ack = await producer.nc.jetstream().publish(
            event_subject("acme", type_), b"event", timeout=CALL_TIMEOUT
        )
        assert ack.stream == EVENT_STREAM

        [msg] = await sub.fetch(1, timeout=CALL_TIMEOUT)
        assert msg.data == b"event"
        await msg.ack_sync(timeout=CALL_TIMEOUT)
        info = await js.consumer_info(EVENT_STREAM, declared.durable)
        assert info.num_ack_pending == 0 and info.delivered.stream_seq == ack.seq
        assert await consumer.settle() == set()
        assert await producer.settle() == set()

    async def test_another_service_cannot_take_it_over(
        self, declared: Consumer, connect_as: ConnectAs
    ) -> None:
        other = "matching" if declared.process != "matching" else "profile"
        intruder = await connect_as(other)
        js = intruder.nc.jetstream(timeout=0.5)
        config = ConsumerConfig(durable_name=declared.durable, filter_subjects=["pm.v1.evt.>"])
        with pytest.raises(TimeoutError):
            await js.add_consumer(EVENT_STREAM, config)
        sub = await js.pull_subscribe_bind(durable=declared.durable, stream=EVENT_STREAM)
        with pytest.raises(TimeoutError):
            await sub.fetch(1, timeout=0.5)
        refused = await intruder.settle()
        for verb in ("CONSUMER.DURABLE.CREATE", "CONSUMER.MSG.NEXT"):
            subject = f"$JS.API.{verb}.{EVENT_STREAM}.{declared.durable}"
            assert ("publish", subject.lower(), None) in refused


@pytest.mark.parametrize("process", REVOCATION_READERS)
class TestRevocationFeed:
    async def test_replays_what_identity_revoked(self, process: str, connect_as: ConnectAs) -> None:
        identity = await connect_as("identity")
        event = revocation(f"jti-{process}")
        ack = await identity.nc.jetstream().publish(
            event_subject("acme", event.type), event.model_dump_json().encode()
        )
        assert ack.stream == EVENT_STREAM
        reader = await connect_as(process)
        revoked = RevocationList()
        feed = RevocationFeed(reader.nc.jetstream(), revoked, catch_up_timeout=5)
        await feed.start()
        try:
            assert feed.caught_up
            assert f"jti-{process}" in revoked
        finally:
            await feed.stop()
        assert await reader.settle() == set()


@pytest.mark.parametrize("process", REVOCATION_READERS)
class TestEphemeralReadersReadOnlyWhatTheyAreFor:
    """An ephemeral consumer's filter is checked by the server: a revocation reader (or a
    live reader) cannot open one over anything else, nor one whose body asks for more
    than its create subject names."""

    async def test_another_filter_or_none_is_refused(
        self, process: str, connect_as: ConnectAs
    ) -> None:
        reader = await connect_as(process)
        js = reader.nc.jetstream(timeout=0.5)
        wider = ConsumerConfig(name=f"peek-{process}", filter_subject="pm.v1.evt.*.profile.>")
        with pytest.raises(TimeoutError):
            await js.add_consumer(EVENT_STREAM, wider)
        unnamed = ConsumerConfig(filter_subject=event_filter(source="identity", name=">"))
        with pytest.raises(TimeoutError):  # the bare create, filter in the body only
            await js.add_consumer(EVENT_STREAM, unnamed)
        everything = ConsumerConfig(name=f"all-{process}")
        with pytest.raises(TimeoutError):
            await js.add_consumer(EVENT_STREAM, everything)
        refused = {subject for _, subject, _ in await reader.settle()}
        assert (
            f"$js.api.consumer.create.{EVENT_STREAM}.peek-{process}.pm.v1.evt.*.profile.>".lower()
            in refused
        )
        assert f"$js.api.consumer.create.{EVENT_STREAM}".lower() in refused
        assert f"$js.api.consumer.create.{EVENT_STREAM}.all-{process}".lower() in refused

    async def test_a_body_asking_for_more_than_its_subject_is_refused_by_the_server(
        self, process: str, connect_as: ConnectAs
    ) -> None:
        reader = await connect_as(process)
        allowed = event_filter(source="identity", name="token_revoked")
        config = ConsumerConfig(name=f"smuggle-{process}", filter_subject="pm.v1.evt.>")
        body = json.dumps({"stream_name": EVENT_STREAM, "config": config.as_dict()})
        subject = f"$JS.API.CONSUMER.CREATE.{EVENT_STREAM}.smuggle-{process}.{allowed}"
        reply = await reader.nc.request(subject, body.encode(), timeout=CALL_TIMEOUT)
        answer = json.loads(reply.data)
        assert "error" in answer and "config" not in answer, answer
        js = reader.nc.jetstream(timeout=0.5)
        exact = ConsumerConfig(name=f"exact-{process}", filter_subject=allowed)
        info = await js.add_consumer(EVENT_STREAM, exact)  # the same request, honest
        assert info.config.filter_subject == allowed
        await js.delete_consumer(EVENT_STREAM, info.name)
        assert await reader.settle() == set()


class TestRequestReply:
    async def test_gateway_calls_a_service_through_its_own_inbox(
        self, connect_as: ConnectAs
    ) -> None:
        service = await connect_as("profile")
        seen: list[tuple[str, str]] = []

        async def answer(msg: Msg) -> None:
            assert msg.headers is not None
            seen.append((msg.reply, msg.headers["Authorization"]))
            await msg.respond(b'{"ok": true}')

        await service.nc.subscribe("pm.v1.profile.echo", queue="profile", cb=answer)
        await service.nc.flush()
        gateway = await connect_as("gateway")
        reply = await request_raw(
            gateway.nc, "pm.v1.profile.echo", b"{}", "the-token", CALL_TIMEOUT
        )
        assert reply == b'{"ok": true}'
        [(reply_to, authorization)] = seen
        assert reply_to.startswith(inbox_prefix("gateway") + ".")
        assert authorization == "Bearer the-token"
        assert await service.settle() == set()
        assert await gateway.settle() == set()

    async def test_services_answer_discovery_and_ops_may_ask(self, connect_as: ConnectAs) -> None:
        service = await connect_as("matching")
        config = ServiceConfig(name="matching", version="0.1.0", queue_group="matching")
        svc = await add_service(service.nc, config)

        async def handler(req: Request) -> None:
            await req.respond(b"{}")

        await svc.add_endpoint(
            EndpointConfig(name="m", subject=operations_of("matching")[0].subject, handler=handler)
        )
        await service.nc.flush()
        ops = await connect_as(OPS)
        reply = await ops.nc.request("$SRV.PING.matching", b"", timeout=CALL_TIMEOUT)
        assert json.loads(reply.data)["name"] == "matching"
        info = await ops.nc.request("$SRV.INFO.matching", b"", timeout=CALL_TIMEOUT)
        assert operations_of("matching")[0].subject in info.data.decode()
        assert await service.settle() == set()
        gateway = await connect_as("gateway")
        with pytest.raises(TimeoutError):
            await gateway.nc.request("$SRV.INFO", b"", timeout=0.5)
        assert ("publish", "$srv.info", None) in await gateway.settle()
        await svc.stop()


class TestTools:
    async def test_rebuild_reads_the_history_of_what_matching_consumes(
        self, connect_as: ConnectAs
    ) -> None:
        from services.matching.rebuild import SIGNALS

        profile = await connect_as("profile")
        ack = await profile.nc.jetstream().publish(
            event_subject("acme", SIGNALS.events[0]), b"history"
        )
        rebuild = await connect_as(REBUILD)
        js = rebuild.nc.jetstream()
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE)
        cfg.filter_subjects = SIGNALS.filter_subjects
        sub = await js.pull_subscribe("", stream=EVENT_STREAM, config=cfg)
        msgs = await sub.fetch(1000, timeout=CALL_TIMEOUT)
        assert ack.seq in [m.metadata.sequence.stream for m in msgs]
        await sub.unsubscribe()
        assert await rebuild.settle() == set()

    async def test_dead_letters_are_listed_and_replayed_by_ops(self, connect_as: ConnectAs) -> None:
        profile = await connect_as("profile")
        dead = dead_letter_subject("profile", "profile-identity")
        ack = await profile.nc.jetstream().publish(dead, b"poison")
        assert ack.stream == DEAD_LETTER_STREAM

        ops = await connect_as(OPS)
        js = ops.nc.jetstream()
        sub = await js.pull_subscribe(
            "pm.v1.dlq.>",
            stream=DEAD_LETTER_STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        )
        [msg] = await sub.fetch(1, timeout=CALL_TIMEOUT)
        assert (msg.subject, msg.data) == (dead, b"poison")
        await msg.ack_sync(timeout=CALL_TIMEOUT)
        await sub.unsubscribe()
        assert await ops.settle() == set()
        # Replay hands the letter back to its own consumer (request/reply), which takes
        # it in its queue group; ops never speaks for a producer on the event stream.
        # Ops asks the way ``partnermesh dead-letters replay`` does (request/reply): a
        # request nobody may serve fails at once (no responders) instead of waiting.
        handed: list[bytes] = []

        async def serve(msg: Msg) -> None:
            handed.append(msg.data)
            await msg.respond(json.dumps({"outcome": "ok", "error": ""}).encode())

        replay_subject = dead_letter_replay_subject("profile", "profile-identity")
        await profile.nc.subscribe(replay_subject, queue="profile-identity", cb=serve)
        await profile.nc.flush()
        letter = DeadLetter(
            seq=ack.seq,
            subject=dead,
            data=b"poison",
            headers={DLQ_PROCESS: "profile", DLQ_CONSUMER: "profile-identity"},
        )
        outcome = await replay(ops.nc, letter, timeout=5 * CALL_TIMEOUT)  # busy test workers
        assert (outcome, handed) == ({"outcome": "ok", "error": ""}, [b"poison"])
        forged = event_filter("acme", "identity", "person_registered")
        await ops.nc.publish(forged, b"replayed")
        assert ("publish", forged.lower(), None) in await ops.settle()
        # A process's dead letters are its own: nobody writes into another's.
        gateway = await connect_as("gateway")
        await gateway.nc.publish(dead, b"forged")
        assert ("publish", dead.lower(), None) in await gateway.settle()

    async def test_only_admin_manages_streams(self, connect_as: ConnectAs) -> None:
        admin = await connect_as(ADMIN)
        js = admin.nc.jetstream()
        info = await js.stream_info(EVENT_STREAM)
        config = info.config
        config.description = "events of every ecosystem"
        updated = await js.update_stream(config)
        assert updated.config.description == "events of every ecosystem"
        for process in ("identity", "gateway", "profile", OPS):
            p = await connect_as(process)
            with pytest.raises((TimeoutError, APIError)):
                await p.nc.jetstream(timeout=0.5).update_stream(config)
            refused = await p.settle()
            assert ("publish", f"$js.api.stream.update.{EVENT_STREAM}".lower(), None) in refused


class TestRebuildTool:
    async def test_replays_with_its_own_key(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``python -m services.matching rebuild --replay`` as ``matching-rebuild``: what
        collaboration published is re-derived, and the bus refused nothing."""
        from prometheus_client import REGISTRY

        from contracts.v1.collaboration import ContentCreated, ContentData
        from deploy import bus
        from services.matching.rebuild import rebuild
        from services.matching.settings import MatchingSettings
        from tests.bus.conftest import probe, secured_server

        with secured_server(tmp_path / "bus") as server:
            await bus.create_streams(server.url, server.auth(ADMIN))
            data = ContentData(
                content_id="c1", kind="post", author="carol", author_partner="east",
                thread="t1", text="hello @dave", mentions=["dave"],
            )  # fmt: skip
            event = ContentCreated(ecosystem="acme", data=data)
            collaboration = await probe(server.url, server.auth("collaboration"), "c")
            await collaboration.nc.jetstream().publish(
                event_subject("acme", event.type), event.model_dump_json().encode()
            )
            await collaboration.nc.close()
            seed = server.keyring.seed_file(REBUILD)
            monkeypatch.setenv("PM_MATCHING_REBUILD_NATS_NKEY_SEED_FILE", str(seed))
            settings = MatchingSettings(
                nats_url=server.url,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'matching.db'}",
                environment="test",
            )
            stats = await rebuild(settings, with_replay=True)
            assert stats["replayed_events"] == 1
            refused = REGISTRY.get_sample_value(
                "pm_nats_permission_violations_total", {"conn": REBUILD}
            )
            assert refused == 0
            assert "Violation" not in server.log()
