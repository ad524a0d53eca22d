"""NATS edge of the profile service: decode, call the service logic, reply."""

from __future__ import annotations

from contracts.v1 import system
from mesh.runtime import ServiceRuntime
from mesh.service import Call


def register(rt: ServiceRuntime) -> None:
    async def echo(call: Call, req: system.EchoRequest) -> system.EchoReply:
        assert call.claims is not None  # the policy demands a token
        return system.EchoReply(
            message=req.message,
            eco=req.eco,
            sub=call.claims.sub,
            partner=call.claims.partner,
            client_id=call.claims.client_id,
            service=rt.name,
            instance=rt.settings.instance,
        )

    rt.endpoint(system.ECHO, echo)
