"""The one service idiom: a handler is ``fn(claims, req)``, called with the verified claims
and the validated request model, over real NATS; a refused call never reaches it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.v1 import system
from mesh.client import call, request_raw
from mesh.errors import MeshError
from mesh.service import Handler, MeshService, routed
from tests.support import tokens as tok


@dataclass(frozen=True)
class Seen:
    """A service's own view of its caller (as collaboration's ``Who``)."""

    sub: str
    eco: str


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    async def echo(self, caller: Any, req: system.EchoRequest) -> system.EchoReply:
        self.calls.append((caller, req))
        return system.EchoReply(
            message=req.message,
            eco=req.eco,
            sub=caller.sub,
            partner=None,
            client_id="-",
            service="profile",
            instance="idiom",
        )


async def _serve(nc: Client, keys: tok.TestKeys, routes: dict[Any, Handler]) -> MeshService:
    service = MeshService(nc, "profile", "0.0.0", keys.verifier())
    for op, handler in routes.items():
        service.register(op, handler)
    await service.start()
    return service


async def test_a_handler_gets_the_verified_claims_and_the_validated_request(
    nc: Client, test_keys: tok.TestKeys, tokens: tok.TokenFactory
) -> None:
    seen = Recorder()
    service = await _serve(nc, test_keys, routed({system.ECHO: seen.echo}))
    try:
        reply = await call(nc, system.ECHO, {"eco": "acme", "message": "hi"}, tokens.mint())
        with pytest.raises(MeshError) as refused:
            await call(nc, system.ECHO, {"eco": "acme"}, None)
        with pytest.raises(MeshError) as invalid:
            body = json.dumps({"eco": "acme", "message": "x" * 1001}).encode()
            await request_raw(nc, system.ECHO.subject, body, tokens.mint(), 5.0)
    finally:
        await service.stop()
    assert refused.value.code is ErrorCode.UNAUTHENTICATED
    assert invalid.value.code is ErrorCode.VALIDATION_FAILED
    (caller, req), *others = seen.calls
    assert others == [], "neither the refused nor the invalid call reached the handler"
    assert isinstance(caller, Claims) and caller.eco == "acme"
    assert isinstance(req, system.EchoRequest) and req.message == "hi"
    assert reply.sub == caller.sub


async def test_a_service_may_take_its_own_view_of_the_caller(
    nc: Client, test_keys: tok.TestKeys, tokens: tok.TokenFactory
) -> None:
    seen = Recorder()

    def view(claims: Claims) -> Seen:
        return Seen(claims.sub, claims.eco)

    service = await _serve(nc, test_keys, routed({system.ECHO: seen.echo}, caller=view))
    try:
        await call(nc, system.ECHO, {"eco": "acme"}, tokens.mint())
    finally:
        await service.stop()
    ((caller, _req),) = seen.calls
    assert isinstance(caller, Seen) and caller.eco == "acme"


def test_an_operation_without_a_caller_is_refused_at_registration(
    nc: Client, test_keys: tok.TestKeys
) -> None:
    public = dataclasses.replace(
        system.ECHO, policy=dataclasses.replace(system.ECHO.policy, public=True)
    )
    service = MeshService(nc, "profile", "0.0.0", test_keys.verifier())
    with pytest.raises(ValueError, match="cannot be public"):
        service.register(public, Recorder().echo)
