"""Two ecosystems of one deployment for the connector's alliance tests: ``acme`` (the
demo people of :mod:`tests.connector.conftest`) and a fresh allied one per test, the
alliance's states published on the bus as identity does, and tokens exchanged across."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client

from contracts.claims import Role, Scope
from contracts.policy import Operation
from contracts.subjects import event_subject
from contracts.v1.alliances import AllianceChanged, AllianceState, AllianceStatus, DirectionTerms
from mesh.client import call
from mesh.tokens import issuer_for
from services.connector.alliances import store
from tests.support.tokens import TEST_IDENTITY_URL, TokenFactory

A = "acme"
PARTS = "gl-parts"  # the allied ecosystem's partner acme's fabrikam grants to
OTHER = "gl-other"  # another partner of the allied ecosystem
ACROSS = [Scope.CONNECTOR_INVOKE, Scope.CONNECTOR_READ]


def terms(partners: list[str] | None = None, scopes: list[Scope] | None = None) -> DirectionTerms:
    """What acme grants the allied ecosystem: by default fabrikam may grant across and
    exchanged tokens may invoke."""
    return DirectionTerms(
        connector_partners=["fabrikam"] if partners is None else partners,
        scopes=ACROSS if scopes is None else scopes,
    )


class Alliance:
    """acme and a fresh ecosystem ``b``: the alliance's changes, and people of ``b``."""

    def __init__(self, nc: Client, tokens: TokenFactory, rt: Any) -> None:
        self.nc, self.tokens, self.rt = nc, tokens, rt
        self.b = f"globex{uuid.uuid4().hex[:6]}"
        self.id = f"al-{uuid.uuid4().hex[:8]}"
        self.version = 0

    async def change(
        self,
        status: AllianceStatus,
        acme: DirectionTerms | None = None,
        b: str | None = None,
        alliance: str | None = None,
    ) -> AllianceState:
        """Publish the alliance's next state (as identity does) and wait until the
        connector's projection holds it."""
        self.version += 1
        state = AllianceState(
            alliance=alliance or self.id,
            ecosystems=[A, b or self.b],
            names={A: "Acme", b or self.b: "Globex"},
            status=status,
            version=self.version,
            offered_by=A,
            terms={A: acme or terms(), b or self.b: DirectionTerms()},
            changed_at=datetime.now(UTC),
            changed_by="olivia",
        )
        event = AllianceChanged(ecosystem=A, subject=state.alliance, data=state)
        await self.nc.jetstream().publish(
            event_subject(A, event.type), event.model_dump_json().encode()
        )
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            async with self.rt.db.sessions() as s:
                held = await store.get(s, state.alliance)
            if held is not None and held.version == state.version:
                return state
            assert asyncio.get_running_loop().time() < deadline, "the alliance was not recorded"
            await asyncio.sleep(0.02)

    def home_token(self, who: str = "gina", partner: str = PARTS, **claims: Any) -> str:
        """A token of the allied ecosystem (its own routes)."""
        roles = claims.pop("roles", [Role.PARTNER_ADMIN, Role.MEMBER])
        return self.tokens.mint(eco=self.b, partner=partner, roles=roles, sub=who, **claims)

    def exchanged(
        self, who: str = "gina", partner: str = PARTS, home: str | None = None, **claims: Any
    ) -> str:
        """A token of ``home`` (the allied ecosystem) exchanged into acme (RFC 8693), as
        identity issues it: ``fed`` names where it came from; roles and scopes from the
        terms, no partner of acme."""
        origin = home or self.b
        fed = {"iss": issuer_for(TEST_IDENTITY_URL, origin), "eco": origin, "partner": partner}
        claims.setdefault("scope", " ".join(s.value for s in ACROSS))
        return self.tokens.mint(
            eco=A, partner=None, roles=[Role.MEMBER], sub=who, fed=fed, **claims
        )

    async def at_home(self, op: Operation, body: dict[str, Any], token: str | None = None) -> Any:
        """Call ``op`` at the allied ecosystem's own route."""
        return await call(self.nc, op, {"eco": self.b, **body}, token or self.home_token())

    async def in_acme(self, op: Operation, body: dict[str, Any], token: str | None = None) -> Any:
        """Call ``op`` at acme's route with an exchanged token."""
        return await call(self.nc, op, {"eco": A, **body}, token or self.exchanged(), timeout=10)
