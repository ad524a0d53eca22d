"""The attacks of the bus audit, re-run against the generated configuration: each one
is refused by the server, and its effect (a token read, a forged event stored or
believed) does not happen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from contracts.bus import inbox_prefix
from contracts.subjects import EVENT_STREAM, event_subject
from contracts.v1.identity import (
    PersonData,
    PersonRegistered,
    RevokedToken,
    TokenRevoked,
    TokenRevokedData,
)
from deploy.natskeys import new_user_seed
from mesh.client import request_raw
from mesh.nats import BusAuth
from mesh.revocation import RevocationFeed, RevocationList
from tests.bus.conftest import ConnectAs, SecuredBus, probe


class TestAnonymous:
    async def test_anonymous_connection_is_refused(self, secured: SecuredBus) -> None:
        with pytest.raises(NatsError, match=r"(?i)authorization violation"):
            await nats.connect(secured.url, allow_reconnect=False, max_reconnect_attempts=0)

    async def test_unknown_key_is_refused(self, secured: SecuredBus, tmp_path: Path) -> None:
        seed = tmp_path / "stranger.nk"
        seed.write_bytes(new_user_seed())
        with pytest.raises(NatsError, match=r"(?i)authorization violation"):
            await probe(secured.url, BusAuth(str(seed), "_INBOX.stranger"), "stranger")


class TestTokenSniffing:
    SNIFFS = (">", "pm.v1.>", "_INBOX.>", f"{inbox_prefix('gateway')}.>", "pm.v1.profile.echo")

    @pytest.mark.parametrize("sniffer", ["matching", "collaboration", "connector", "identity"])
    async def test_nobody_reads_a_call_or_its_reply(
        self, sniffer: str, connect_as: ConnectAs
    ) -> None:
        thief = await connect_as(sniffer)
        stolen: list[bytes] = []

        async def steal(msg: Msg) -> None:
            stolen.append(msg.data + repr(msg.headers).encode())

        for subject in self.SNIFFS:
            await thief.nc.subscribe(subject, cb=steal)
        refused = await thief.settle()
        assert {("subscription", s.lower(), None) for s in self.SNIFFS} <= refused

        service = await connect_as("profile")

        async def answer(msg: Msg) -> None:
            assert msg.headers is not None
            await msg.respond(b"reply with " + msg.headers["Authorization"].encode())

        await service.nc.subscribe("pm.v1.profile.echo", queue="profile", cb=answer)
        await service.nc.flush()
        gateway = await connect_as("gateway")
        reply = await request_raw(gateway.nc, "pm.v1.profile.echo", b"{}", "secret-token", 2.0)
        assert reply == b"reply with Bearer secret-token"
        await thief.nc.flush()
        await asyncio.sleep(0.1)
        assert stolen == []


def person_registered() -> PersonRegistered:
    data = PersonData(person="p1", partner="northwind", name="X")
    return PersonRegistered(ecosystem="acme", data=data)


def token_revoked(jti: str) -> TokenRevoked:
    data = TokenRevokedData(tokens=[RevokedToken(jti=jti, exp=int(time.time()) + 3600)])
    return TokenRevoked(ecosystem="acme", data=data)


class TestForgedEvents:
    async def stored(self, connect_as: ConnectAs, type_: str) -> int:
        admin = await connect_as("admin")
        info = await admin.nc.jetstream().stream_info(
            EVENT_STREAM, subjects_filter=event_subject("acme", type_)
        )
        return sum((info.state.subjects or {}).values())

    @pytest.mark.parametrize(
        ("forger", "type_"),
        [
            ("profile", "pm.v1.matching.connected"),
            ("gateway", "pm.v1.matching.connected"),
            ("profile", "pm.v1.identity.person_registered"),
            ("gateway", "pm.v1.identity.person_registered"),
            ("matching", "pm.v1.identity.token_revoked"),
            ("gateway", "pm.v1.identity.token_revoked"),
            ("connector", "pm.v1.identity.token_revoked"),
        ],
    )
    async def test_refused_at_the_bus_and_not_stored(
        self, forger: str, type_: str, connect_as: ConnectAs
    ) -> None:
        before = await self.stored(connect_as, type_)
        p = await connect_as(forger)
        subject = event_subject("acme", type_)
        with pytest.raises(TimeoutError):  # no PubAck: the stream never saw it
            await p.nc.jetstream().publish(subject, b'{"forged": true}', timeout=0.5)
        assert ("publish", subject.lower(), None) in await p.settle()
        assert await self.stored(connect_as, type_) == before

    async def test_only_identity_revokes_tokens(self, connect_as: ConnectAs) -> None:
        forger = await connect_as("matching")
        forged = token_revoked("forged-jti")
        with pytest.raises(TimeoutError):
            await forger.nc.jetstream().publish(
                event_subject("acme", forged.type), forged.model_dump_json().encode(), timeout=0.5
            )
        identity = await connect_as("identity")
        real = token_revoked("real-jti")
        await identity.nc.jetstream().publish(
            event_subject("acme", real.type), real.model_dump_json().encode()
        )
        gateway = await connect_as("gateway")
        revoked = RevocationList()
        feed = RevocationFeed(gateway.nc.jetstream(), revoked, catch_up_timeout=5)
        await feed.start()
        try:
            assert "real-jti" in revoked
            assert "forged-jti" not in revoked
        finally:
            await feed.stop()

    async def test_identity_publishes_its_own_events(self, connect_as: ConnectAs) -> None:
        """The counterpart of the forgeries: the owner's event is stored (and counted)."""
        event = person_registered()
        before = await self.stored(connect_as, event.type)
        identity = await connect_as("identity")
        ack = await identity.nc.jetstream().publish(
            event_subject("acme", event.type), event.model_dump_json().encode()
        )
        assert ack.stream == EVENT_STREAM
        assert await identity.settle() == set()
        assert await self.stored(connect_as, event.type) == before + 1
