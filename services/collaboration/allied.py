"""Workspaces across an alliance: a member of the allied ecosystem reaches a workspace
through their own ecosystem's routes while the alliance is active, and is refused while
it is not (suspended or ended); resumed, it opens to them again. The state is read from
the service's projection of the alliances (``mesh.alliances``) in the request's
transaction, so every replica refuses at once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.alliances import AllianceState
from mesh.alliances import AllianceStore
from mesh.errors import forbidden
from services.collaboration.models import MemberRow, WorkspaceRow, metadata

ALLIANCES = AllianceStore(metadata)


def member_eco(ws: WorkspaceRow, member: MemberRow) -> str:
    return member.eco or ws.eco


async def allied(s: AsyncSession, eco: str, other: str) -> bool:
    return eco == other or await ALLIANCES.ally(s, eco, other) is not None


async def require_allied(s: AsyncSession, ws: WorkspaceRow, eco: str) -> None:
    """Refuse a member of another ecosystem than the workspace's while their alliance
    is not active."""
    if not await allied(s, ws.eco, eco):
        raise forbidden(
            f"the alliance between {ws.eco} and {eco} is not active: this workspace is "
            "closed to its members of the allied ecosystem until it resumes"
        )


async def record(s: AsyncSession, state: AllianceState) -> None:
    await ALLIANCES.record(s, state)
