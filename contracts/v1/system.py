"""Operations every deployment has: the echo used to prove the path end to end."""

from __future__ import annotations

from pydantic import BaseModel, Field

from contracts.claims import Scope
from contracts.policy import Operation, Policy
from contracts.subjects import request_subject


class EchoRequest(BaseModel):
    eco: str
    message: str = Field(default="hello", max_length=1000)


class EchoReply(BaseModel):
    message: str
    eco: str
    sub: str
    partner: str | None
    client_id: str
    service: str
    instance: str


ECHO = Operation(
    name="system.echo",
    subject=request_subject("profile", "echo"),
    method="GET",
    path="/v1/ecosystems/{eco}/echo",
    request=EchoRequest,
    reply=EchoReply,
    policy=Policy(scope=Scope.MESH_PING),
    summary="Echo a message back through gateway, NATS and a service, with the caller's claims",
    tags=("system",),
)

OPERATIONS: tuple[Operation, ...] = (ECHO,)
