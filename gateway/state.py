"""What a running gateway holds: settings, the route table and what the lifespan connects."""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.aio.client import Client

from contracts.errors import ErrorCode
from gateway.dpop import EdgeDPoP
from gateway.live import LiveFeed
from gateway.ratelimit import RateLimiter
from gateway.routes import RouteTable
from gateway.settings import GatewaySettings
from gateway.tracing import Tracing
from mesh.errors import MeshError
from mesh.revocation import RevocationFeed
from mesh.tokens import TokenVerifier


@dataclass
class Gateway:
    settings: GatewaySettings
    routes: RouteTable
    verifier: TokenVerifier | None = None
    nc: Client | None = None
    limiter: RateLimiter | None = None
    tracing: Tracing = field(default_factory=Tracing)
    dpop: EdgeDPoP | None = None
    feed: RevocationFeed | None = None  # set, caught up, before nc: no request outruns it
    live: LiveFeed | None = None  # notifications for open streams (gateway.livestream)

    def ready(self) -> bool:
        """Connected, and hearing revocations (a gateway deaf to them must not serve)."""
        return (
            self.nc is not None
            and self.nc.is_connected
            and self.verifier is not None
            and self.feed is not None
            and self.feed.following
        )

    def nats(self) -> Client:
        if self.nc is None or not self.nc.is_connected:
            raise MeshError(ErrorCode.UNAVAILABLE, "the mesh is not reachable right now")
        return self.nc

    def token_verifier(self) -> TokenVerifier:
        if self.verifier is None:
            raise MeshError(ErrorCode.UNAVAILABLE, "the gateway is starting")
        return self.verifier

    def proofs(self) -> EdgeDPoP:
        if self.dpop is None:
            self.dpop = EdgeDPoP(self.settings)
        return self.dpop

    def rate_limiter(self) -> RateLimiter:
        if self.limiter is None:
            raise MeshError(ErrorCode.UNAVAILABLE, "the gateway is starting")
        return self.limiter
