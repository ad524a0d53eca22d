"""Alliances for the profile tests: identity's real ``AllianceChanged`` events, published
on the test NATS the way identity's outbox does, and people of two ecosystems."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.errors import ErrorCode
from contracts.policy import Operation
from contracts.v1.alliances import (
    AllianceChanged,
    AllianceState,
    AllianceStatus,
    DirectionTerms,
    Sharing,
)
from contracts.v1.matching import IntroductionConnected, IntroductionData
from mesh.errors import MeshError
from mesh.runtime import ServiceRuntime
from tests.profile.conftest import Eco
from tests.support.tokens import TokenFactory

BRAND = "Globex Brand"


class Alliance:
    """One alliance between ``owner`` (whose profiles are read) and ``viewer``."""

    def __init__(self, owner: Eco, viewer: Eco) -> None:
        self.owner, self.viewer = owner, viewer
        self.id = f"al-{uuid.uuid4().hex[:10]}"
        self.version = 0

    async def set(
        self,
        status: AllianceStatus,
        owner_shares: Sharing = Sharing.PEOPLE,
        viewer_shares: Sharing = Sharing.NOTHING,
    ) -> None:
        """Publish the alliance's next state and wait until profile recorded it."""
        self.version += 1
        a, b = self.owner.name, self.viewer.name
        state = AllianceState(
            alliance=self.id,
            ecosystems=[b, a],
            names={a: BRAND, b: "Viewer Co"},
            status=status,
            version=self.version,
            offered_by=b,
            terms={a: DirectionTerms(share=owner_shares), b: DirectionTerms(share=viewer_shares)},
            changed_at=datetime.now(UTC),
            changed_by="operator",
        )
        await self.owner.publish(AllianceChanged(ecosystem=b, subject=self.id, data=state))
        await self.owner.settle()

    async def connect(self, viewer: str, owner: str) -> None:
        """An introduction across the alliance was accepted by both (matching's event)."""
        v_partner, o_partner = self.viewer.people[viewer][0], self.owner.people[owner][0]
        await self.viewer.publish(
            IntroductionConnected(
                ecosystem=self.viewer.name,
                data=IntroductionData(
                    introduction=f"i-{uuid.uuid4().hex[:8]}",
                    a=viewer,
                    a_partner=v_partner,
                    b=owner,
                    b_partner=o_partner,
                    status="connected",
                    a_eco=self.viewer.name,
                    b_eco=self.owner.name,
                ),
            )
        )
        await self.viewer.settle()

    async def read(self, op: Operation, who: str, **body: Any) -> Any:
        return await self.viewer.call(op, who, ally=self.owner.name, **body)

    async def refused(self, op: Operation, who: str, detail: str, **body: Any) -> None:
        with pytest.raises(MeshError) as err:
            await self.read(op, who, **body)
        assert err.value.code is ErrorCode.NOT_FOUND, err.value
        assert detail in err.value.detail, err.value.detail


async def two_ecosystems(
    nc: Client, tokens: TokenFactory, profile: ServiceRuntime
) -> tuple[Eco, Eco, Alliance]:
    owner, viewer = Eco(nc, tokens, profile), Eco(nc, tokens, profile)
    return owner, viewer, Alliance(owner, viewer)
