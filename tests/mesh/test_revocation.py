"""The revocation list (bounded, forgets expired tokens), the verifier's check on cached and
fresh tokens, and the feed replaying identity's ``token_revoked`` events from JetStream."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest
from nats.aio.client import Client
from pydantic import ValidationError

from contracts.errors import ErrorCode
from contracts.subjects import event_subject
from contracts.v1.identity import RevokedSubject, RevokedToken, TokenRevoked, TokenRevokedData
from mesh.errors import MeshError
from mesh.nats import ensure_event_stream
from mesh.revocation import RevocationFeed, RevocationList
from mesh.tokens import TokenVerifier
from tests.support.tokens import TEST_IDENTITY_URL, TestKeys, TokenFactory


def _jti(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


class TestRevocationList:
    def test_remembers_until_expiry_then_forgets(self) -> None:
        revoked = RevocationList(leeway=0)
        now = time.time()
        assert revoked.add("a", now + 10, now) and "a" in revoked
        assert not revoked.add("a", now + 10, now), "a known jti is not added twice"
        assert not revoked.add("old", now - 1, now), "an expired token needs no entry"
        revoked.prune(now + 11)
        assert "a" not in revoked and len(revoked) == 0

    def test_is_bounded_dropping_what_expires_soonest(self) -> None:
        revoked = RevocationList(max_entries=3, leeway=0)
        now = time.time()
        for i, jti in enumerate(["soon", "later", "latest", "last"]):
            revoked.add(jti, now + 100 + i, now)
        assert len(revoked) == 3
        assert "soon" not in revoked and all(j in revoked for j in ("later", "latest", "last"))


class TestCutOffs:
    def test_refuses_what_was_issued_before_then_forgets(self) -> None:
        revoked = RevocationList(leeway=0)
        now = int(time.time())
        assert revoked.cut_off("acme", "p1", now, now + 100, now)
        assert revoked.cut("acme", "p1", now - 1) and not revoked.cut("acme", "p1", now)
        assert not revoked.cut("acme", "p2", now - 1), "another subject"
        assert not revoked.cut("globex", "p1", now - 1), "another ecosystem"
        assert not revoked.cut_off("acme", "p1", now - 5, now + 100, now), "an earlier cut-off"
        assert revoked.cut_off("acme", None, now, now + 100, now)  # the whole ecosystem
        assert revoked.cut("acme", "anyone", now - 1)
        revoked.prune(now + 101)
        assert not revoked.cutoffs and not revoked.cut("acme", "p1", now - 1)

    def test_an_expired_cut_off_is_not_kept(self) -> None:
        revoked = RevocationList(leeway=0)
        now = int(time.time())
        assert not revoked.cut_off("acme", "p1", now - 200, now - 100, now)
        assert not revoked.cutoffs

    def test_a_revocation_names_something(self) -> None:
        with pytest.raises(ValidationError):
            TokenRevokedData()

    def test_an_origin_cut_off_reaches_only_tokens_exchanged_from_there(self) -> None:
        revoked = RevocationList(leeway=0)
        now = int(time.time())
        assert revoked.cut_off_origin("acme", "globex", now, now + 100, now)
        assert revoked.cut_from("acme", "globex", now - 1)
        assert not revoked.cut_from("acme", "globex", now), "issued after the cut-off"
        assert not revoked.cut_from("acme", "initech", now - 1), "from another ecosystem"
        assert not revoked.cut_from("globex", "acme", now - 1), "the other direction"
        assert not revoked.cut("acme", "p1", now - 1), "acme's own tokens"
        assert not revoked.cut_off_origin("acme", "globex", now - 5, now + 100, now)
        revoked.prune(now + 101)
        assert not revoked.origins

    def test_a_cut_off_names_a_sub_or_an_origin(self) -> None:
        with pytest.raises(ValidationError):
            RevokedSubject(sub="p1", origin="globex", before=1, until=2)

    @pytest.mark.parametrize("cache_size", [0, 100])
    async def test_verifier_refuses_tokens_exchanged_before_an_alliance_ended(
        self, tokens: TokenFactory, test_keys: TestKeys, cache_size: int
    ) -> None:
        verifier = TokenVerifier(test_keys, TEST_IDENTITY_URL, "partnermesh", cache_size=cache_size)
        now = int(time.time())
        fed = {"iss": "https://id.example/eco/globex", "eco": "globex"}
        crossed = tokens.mint(sub="p1", iat=now - 10, fed=fed)
        elsewhere = tokens.mint(sub="p1", iat=now - 10, fed={**fed, "eco": "initech"})
        own = tokens.mint(sub="p1", iat=now - 10)
        later = tokens.mint(sub="p1", iat=now, fed=fed)
        assert (await verifier.verify(crossed)).fed is not None  # cached, when it caches
        verifier.revoked.cut_off_origin("acme", "globex", now, now + 300)
        with pytest.raises(MeshError) as err:
            await verifier.verify(crossed)
        assert "revoked" in err.value.detail
        for token in (elsewhere, own, later):
            assert (await verifier.verify(token)).sub == "p1"

    @pytest.mark.parametrize("cache_size", [0, 100])
    @pytest.mark.parametrize("sub", ["p1", None])
    async def test_verifier_refuses_tokens_issued_before(
        self, tokens: TokenFactory, test_keys: TestKeys, cache_size: int, sub: str | None
    ) -> None:
        verifier = TokenVerifier(test_keys, TEST_IDENTITY_URL, "partnermesh", cache_size=cache_size)
        now = int(time.time())
        old = tokens.mint(sub="p1", iat=now - 10)
        other = tokens.mint(sub="p2", iat=now - 10)
        fresh = tokens.mint(sub="p1", iat=now + 1)
        for token in (old, other, fresh):
            await verifier.verify(token)  # cached now (when the cache is on)
        verifier.revoked.cut_off("acme", sub, now, now + 300)
        with pytest.raises(MeshError) as err:
            await verifier.verify(old)
        assert err.value.code is ErrorCode.UNAUTHENTICATED and "revoked" in err.value.detail
        assert (await verifier.verify(fresh)).sub == "p1"
        if sub is None:
            with pytest.raises(MeshError):
                await verifier.verify(other)
        else:
            assert (await verifier.verify(other)).sub == "p2"

    @pytest.mark.parametrize("sub", ["p1", None])
    async def test_reaches_tokens_exchanged_across_an_alliance(
        self, tokens: TokenFactory, test_keys: TestKeys, sub: str | None
    ) -> None:
        """A person (or ecosystem) disabled in ``globex``: tokens exchanged from there into
        ``acme`` (``fed.eco``) are cut off too; acme's own tokens of that sub are not."""
        verifier = TokenVerifier(test_keys, TEST_IDENTITY_URL, "partnermesh")
        now = int(time.time())
        fed = {"iss": "https://id.example/eco/globex", "eco": "globex"}
        crossed = tokens.mint(sub="p1", iat=now - 10, fed=fed)
        own = tokens.mint(sub="p1", iat=now - 10)
        later = tokens.mint(sub="p1", iat=now + 1, fed=fed)
        verifier.revoked.cut_off("globex", sub, now, now + 300)
        with pytest.raises(MeshError) as err:
            await verifier.verify(crossed)
        assert "revoked" in err.value.detail
        assert (await verifier.verify(own)).sub == "p1"
        assert (await verifier.verify(later)).fed is not None


class TestVerifierRefusesRevoked:
    @pytest.mark.parametrize("cache_size", [0, 100])
    async def test_revoked_jti_is_refused_cached_or_not(
        self, tokens: TokenFactory, test_keys: TestKeys, cache_size: int
    ) -> None:
        verifier = TokenVerifier(test_keys, TEST_IDENTITY_URL, "partnermesh", cache_size=cache_size)
        token, other = tokens.mint(), tokens.mint()
        await verifier.verify(token)  # cached now (when the cache is on)
        verifier.revoked.add(_jti(token), time.time() + 300)
        for _ in range(2):
            with pytest.raises(MeshError) as err:
                await verifier.verify(token)
            assert err.value.code is ErrorCode.UNAUTHENTICATED
            assert "revoked" in err.value.detail
        assert (await verifier.verify(other)).jti == _jti(other)


def _event(eco: str, *jtis: str) -> TokenRevoked:
    exp = int(time.time()) + 300
    tokens = [RevokedToken(jti=j, exp=exp) for j in jtis]
    return TokenRevoked(ecosystem=eco, data=TokenRevokedData(tokens=tokens))


class TestRevocationFeed:
    async def test_replays_earlier_revocations_at_start_then_follows(self, nc: Client) -> None:
        js = nc.jetstream()
        await ensure_event_stream(js)
        before = _event("acme", "early-1", "early-2")
        await js.publish(event_subject("acme", before.type), before.model_dump_json().encode())
        await js.publish(event_subject("acme", "pm.v1.identity.audit"), b"{}")  # not ours

        revoked = RevocationList()
        feed = RevocationFeed(js, revoked)
        await feed.start()
        try:
            assert feed.caught_up
            assert "early-1" in revoked and "early-2" in revoked  # before start() returned
            later = _event("globex", "late")
            await js.publish(event_subject("globex", later.type), later.model_dump_json().encode())
            await js.publish(event_subject("acme", later.type), b'{"not": "an event"}')
            deadline = time.monotonic() + 10
            while "late" not in revoked:
                assert time.monotonic() < deadline, "the live revocation never arrived"
                await asyncio.sleep(0.02)
        finally:
            await feed.stop()

    async def test_applies_the_cut_offs_it_receives(self, nc: Client) -> None:
        js = nc.jetstream()
        await ensure_event_stream(js)
        eco = f"eco{uuid.uuid4().hex[:8]}"
        now = int(time.time())
        cut = RevokedSubject(sub="p1", before=now, until=now + 300)
        event = TokenRevoked(ecosystem=eco, data=TokenRevokedData(subjects=[cut]))
        await js.publish(event_subject(eco, event.type), event.model_dump_json().encode())
        revoked = RevocationList()
        feed = RevocationFeed(js, revoked)
        await feed.start()
        try:
            assert revoked.cut(eco, "p1", now - 1) and not revoked.cut(eco, "p1", now)
        finally:
            await feed.stop()

    async def test_applies_origin_cut_offs(self, nc: Client) -> None:
        js = nc.jetstream()
        await ensure_event_stream(js)
        eco = f"eco{uuid.uuid4().hex[:8]}"
        now = int(time.time())
        cut = RevokedSubject(origin="globex", before=now, until=now + 300)
        data = TokenRevokedData(subjects=[cut], reason="alliance_ended")
        event = TokenRevoked(ecosystem=eco, data=data)
        await js.publish(event_subject(eco, event.type), event.model_dump_json().encode())
        revoked = RevocationList()
        feed = RevocationFeed(js, revoked)
        await feed.start()
        try:
            assert revoked.cut_from(eco, "globex", now - 1)
            assert not revoked.cut(eco, "p1", now - 1), "not a cut-off of every token"
        finally:
            await feed.stop()

    async def test_starts_when_no_revocation_matches(self, nc: Client) -> None:
        feed = RevocationFeed(nc.jetstream(), RevocationList(), catch_up_timeout=5)
        feed.horizon_s = 0.001  # nothing this recent: the consumer starts with nothing pending
        await feed.start()
        await feed.stop()
        assert feed.caught_up
