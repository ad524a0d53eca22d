"""The service base: endpoints over real NATS, zero-trust token checks, coded errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.micro.service import ServiceInfo
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from contracts.claims import Claims, Role, Scope
from contracts.errors import ErrorCode
from contracts.v1 import system
from mesh.client import call, request_raw
from mesh.errors import MeshError
from mesh.runtime import ServiceRuntime
from mesh.service import MeshService
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support.bombs import BOMBS, ODD_BODIES, b64url, object_holding, token_bombs
from tests.support.dpop import DPoPKey
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory


@pytest.fixture
async def profile(
    nats_url: str, database_url: str, test_keys: TestKeys
) -> AsyncIterator[ServiceRuntime]:
    """A real profile service on the test NATS."""
    async with run_service(
        "profile",
        ProfileSettings,
        models.metadata,
        handlers.register,
        nats_url=nats_url,
        database_url=database_url,
        verifier=test_keys.verifier(),
    ) as rt:
        yield rt


class TestEcho:
    async def test_echo_carries_claims(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="acme", partner="alpha", sub="alice")
        reply = await call(nc, system.ECHO, {"eco": "acme", "message": "hi"}, token)
        assert reply.message == "hi"
        assert (reply.sub, reply.partner, reply.eco) == ("alice", "alpha", "acme")

    async def test_no_token_is_unauthenticated(self, nc: Client, profile: ServiceRuntime) -> None:
        with pytest.raises(MeshError) as err:
            await call(nc, system.ECHO, {"eco": "acme"}, None)
        assert err.value.code is ErrorCode.UNAUTHENTICATED

    async def test_other_ecosystem_is_forbidden(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="globex")
        with pytest.raises(MeshError) as err:
            await call(nc, system.ECHO, {"eco": "acme"}, token)
        assert err.value.code is ErrorCode.FORBIDDEN

    async def test_missing_scope_is_forbidden(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(scope=Scope.PROFILE_READ.value)
        with pytest.raises(MeshError) as err:
            await call(nc, system.ECHO, {"eco": "acme"}, token)
        assert err.value.code is ErrorCode.FORBIDDEN
        assert "mesh:ping" in err.value.detail

    async def test_expired_token_is_unauthenticated(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(expires_in=-120)
        with pytest.raises(MeshError) as err:
            await call(nc, system.ECHO, {"eco": "acme"}, token)
        assert err.value.code is ErrorCode.UNAUTHENTICATED
        assert "expired" in err.value.detail

    async def test_forged_signature_is_unauthenticated(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        head, body, sig = tokens.mint().split(".")
        forged = f"{head}.{body}.{sig[:-4]}AAAA"
        with pytest.raises(MeshError) as err:
            await call(nc, system.ECHO, {"eco": "acme"}, forged)
        assert err.value.code is ErrorCode.UNAUTHENTICATED

    async def test_alg_none_is_refused(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        import jwt

        unsigned = jwt.encode(tokens.claims(), "", algorithm="none", headers={"typ": "at+jwt"})
        with pytest.raises(MeshError) as err:
            await call(nc, system.ECHO, {"eco": "acme"}, unsigned)
        assert err.value.code is ErrorCode.UNAUTHENTICATED

    async def test_invalid_request_is_a_validation_error(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint()
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, b'{"eco": 5, "message": []}', token)
        assert err.value.code is ErrorCode.VALIDATION_FAILED
        assert err.value.errors

    async def test_roles_are_carried(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(roles=[Role.OPERATOR], partner=None)
        reply = await call(nc, system.ECHO, {"eco": "acme"}, token)
        assert reply.partner is None


class TestDiscovery:
    async def test_srv_ping_and_info(self, nc: Client, profile: ServiceRuntime) -> None:
        ping = await nc.request("$SRV.PING.profile", b"", timeout=2)
        assert json.loads(ping.data)["name"] == "profile"
        info = ServiceInfo.from_dict(json.loads((await nc.request("$SRV.INFO.profile", b"")).data))
        assert system.ECHO.subject in [e.subject for e in info.endpoints]


class TestNoResponders:
    async def test_a_service_starting_just_after_the_request_still_answers(
        self, nc: Client, nats_url: str, tmp_path: Path, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        """'No responders' means nobody got the request: the client may safely try again."""

        async def start_soon() -> contextlib.AbstractAsyncContextManager[ServiceRuntime]:
            await asyncio.sleep(0.03)
            return run_service(
                "profile",
                ProfileSettings,
                models.metadata,
                handlers.register,
                nats_url=nats_url,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                verifier=test_keys.verifier(),
            )

        request = asyncio.create_task(
            call(nc, system.ECHO, {"eco": "acme", "message": "late"}, tokens.mint())
        )
        async with await start_soon():
            reply = await request
        assert reply.message == "late"

    async def test_nobody_at_all_is_unavailable(self, nc: Client, tokens: TokenFactory) -> None:
        with pytest.raises(MeshError) as err:
            await call(nc, system.ECHO, {"eco": "acme"}, tokens.mint())
        assert err.value.code is ErrorCode.UNAVAILABLE


class TestDatabaseUnreachable:
    async def test_a_database_that_does_not_answer_is_unavailable_not_internal(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        """A real connection refused (nothing listens on the database's port): the caller
        gets ``unavailable`` (503 at the edge) and may retry, never a 500."""
        from sqlalchemy import MetaData, text

        from mesh.db import Database
        from mesh.localnats import free_port

        db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone", MetaData())
        service = MeshService(nc, "profile", "0.0.0", test_keys.verifier())

        async def reads(claims: Claims, request: object) -> BaseModel:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))
            raise AssertionError("the database answered")

        service.register(system.ECHO, reads)
        await service.start()
        try:
            with pytest.raises(MeshError) as err:
                await call(nc, system.ECHO, {"eco": "acme"}, tokens.mint(eco="acme"))
            assert err.value.code is ErrorCode.UNAVAILABLE
            assert "request id" in err.value.detail and "127.0.0.1" not in err.value.detail
        finally:
            await service.stop()
            await db.dispose()


class TestUnexpectedFailures:
    async def _serve(self, nc: Client, test_keys: TestKeys, failure: Exception) -> MeshService:
        service = MeshService(nc, "profile", "0.0.0", test_keys.verifier())

        async def fails(claims: Claims, request: object) -> BaseModel:
            raise failure

        service.register(system.ECHO, fails)
        await service.start()
        return service

    async def test_a_lost_uniqueness_race_is_a_conflict(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        race = IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed"))
        service = await self._serve(nc, test_keys, race)
        try:
            with pytest.raises(MeshError) as err:
                await call(nc, system.ECHO, {"eco": "acme"}, tokens.mint(eco="acme"))
            assert err.value.code is ErrorCode.CONFLICT
            assert "UNIQUE" not in err.value.detail, "database details stay inside"
        finally:
            await service.stop()

    async def test_anything_else_is_an_internal_error_naming_the_request(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        service = await self._serve(nc, test_keys, RuntimeError("secret detail"))
        try:
            with pytest.raises(MeshError) as err:
                await call(nc, system.ECHO, {"eco": "acme"}, tokens.mint(eco="acme"))
            assert err.value.code is ErrorCode.INTERNAL
            assert "secret detail" not in err.value.detail and "request id" in err.value.detail
        finally:
            await service.stop()


class TestCallerBeforeBody:
    """A service authenticates and checks scope and roles before it reads the body, so an
    unauthenticated caller learns nothing of the schema; the bindings still hold."""

    async def test_no_token_and_a_wrong_body_is_unauthenticated(
        self, nc: Client, profile: ServiceRuntime
    ) -> None:
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, b'{"eco": 5, "message": []}', None)
        assert err.value.code is ErrorCode.UNAUTHENTICATED
        assert not err.value.errors

    async def test_a_token_without_the_scope_and_a_wrong_body_is_forbidden(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(scope=Scope.PROFILE_READ.value)
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, b'{"message": []}', token)
        assert err.value.code is ErrorCode.FORBIDDEN
        assert not err.value.errors

    async def test_a_caller_who_may_call_gets_the_field_errors(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, b'{"message": []}', tokens.mint())
        assert err.value.code is ErrorCode.VALIDATION_FAILED
        assert err.value.errors is not None
        assert {tuple(e["loc"]) for e in err.value.errors} == {("eco",), ("message",)}

    async def test_the_ecosystem_binding_is_still_decided_on_the_body(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, b'{"eco": "globex"}', tokens.mint())
        assert err.value.code is ErrorCode.FORBIDDEN


class TestHostileRequests:
    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_body_without_a_token_is_unauthenticated(
        self, nc: Client, profile: ServiceRuntime, bomb: str
    ) -> None:
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, bomb.encode(), None)
        assert err.value.code is ErrorCode.UNAUTHENTICATED

    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_body_is_a_bad_request(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory, bomb: str
    ) -> None:
        payload = object_holding(bomb, eco="acme").encode()
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, payload, tokens.mint())
        assert err.value.code is ErrorCode.BAD_REQUEST

    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    async def test_a_nested_token_is_unauthenticated(
        self, nc: Client, profile: ServiceRuntime, token: str
    ) -> None:
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, b'{"eco": "acme"}', token)
        assert err.value.code is ErrorCode.UNAUTHENTICATED

    @pytest.mark.parametrize("kind", BOMBS)
    async def test_a_nested_dpop_proof_is_unauthenticated(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory, kind: str
    ) -> None:
        key = DPoPKey()
        token = tokens.mint(cnf={"jkt": key.jkt})
        good = key.proof("GET", "https://gw.example/v1/ecosystems/acme/echo", token).split(".")
        proof = f"{b64url(BOMBS[kind])}.{good[1]}.{good[2]}"
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        with pytest.raises(MeshError) as err:
            await request_raw(nc, system.ECHO.subject, b'{"eco": "acme"}', None, 5.0, headers)
        assert err.value.code is ErrorCode.UNAUTHENTICATED
        # the well-formed proof of the same token goes through
        headers["DPoP"] = ".".join(good)
        reply = await request_raw(nc, system.ECHO.subject, b'{"eco": "acme"}', None, 5.0, headers)
        assert json.loads(reply)["eco"] == "acme"

    @pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
    async def test_odd_documents_are_client_errors(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory, body: bytes
    ) -> None:
        try:
            await request_raw(nc, system.ECHO.subject, body, tokens.mint())
        except MeshError as exc:
            assert exc.status < 500, exc
