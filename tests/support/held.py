"""A real MeshService serving the echo operation, whose calls with message ``hold`` wait
until the test releases them: requests in flight that a test controls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from nats.aio.client import Client

from contracts.claims import Claims
from contracts.v1 import system
from mesh import context
from mesh.service import MeshService
from mesh.tokens import TokenVerifier


class HeldEcho:
    """The handler: counts arrivals, notes each call's deadline, holds ``hold`` calls."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = 0
        self.deadlines: list[float | None] = []

    async def echo(self, claims: Claims, body: Any) -> system.EchoReply:
        self.arrived += 1
        self.deadlines.append(context.deadline.get())
        if body.message == "hold":
            await self.release.wait()
        return system.EchoReply(
            message=body.message,
            eco=body.eco,
            sub=claims.sub,
            partner=claims.partner,
            client_id=claims.client_id,
            service="profile",
            instance="held",
        )

    async def arrivals(self, n: int, within: float = 10.0) -> None:
        """Wait until ``n`` calls have reached the handler."""
        async with asyncio.timeout(within):
            while self.arrived < n:
                await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def held_echo(
    nc: Client, verifier: TokenVerifier, max_concurrency: int = 64
) -> AsyncIterator[HeldEcho]:
    """Serve the echo operation as the profile service would, with held calls; on exit,
    release whatever is still held and stop."""
    held = HeldEcho()
    service = MeshService(nc, "profile", "0.0.0", verifier, max_concurrency=max_concurrency)
    service.register(system.ECHO, held.echo)
    await service.start()
    try:
        yield held
    finally:
        held.release.set()
        await service.stop()
