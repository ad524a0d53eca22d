"""Introductions across an alliance: what the terms allow, whose brokers curate.

``a`` is a person of the ecosystem where the introduction was proposed (``row.eco``),
``b`` one of the allied ecosystem ``row.b_eco``; the terms that apply are those ``b``'s
ecosystem (the owner of ``b``'s data) shares with ``a``'s. A broker proposing by hand
approves for their own side, so a curated introduction waits for the brokers of ``b``'s
side when the terms name them (``owner`` or ``both``) and is approved at once otherwise.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.alliances import Curators, Introductions
from mesh.alliances import AllianceStore, Ally
from mesh.errors import forbidden
from services.matching.models import IntroductionRow

NAMED = {
    Curators.OWNER.value: "b",
    Curators.VIEWER.value: "a",
    Curators.BOTH.value: "ab",
}


def is_across(row: IntroductionRow) -> bool:
    return row.b_eco is not None and row.b_eco != row.eco


def b_eco(row: IntroductionRow) -> str:
    return row.b_eco or row.eco


def curators_named(row: IntroductionRow) -> set[str]:
    """The ecosystems whose brokers may approve or reject it: its own for one within an
    ecosystem or an open one across; the sides the terms name for a curated one."""
    if not is_across(row) or row.curators is None:
        return {row.eco}
    return {row.eco if side == "a" else b_eco(row) for side in NAMED[row.curators]}


def seen_by_brokers(row: IntroductionRow) -> set[str]:
    """The ecosystems whose brokers see it: where it was proposed, and the curators."""
    return {row.eco} | curators_named(row)


async def allowed(s: AsyncSession, alliances: AllianceStore, eco: str, other: str) -> Ally:
    """The active alliance under which people of ``eco`` may be introduced to people of
    ``other``; a clear refusal otherwise."""
    ally = await alliances.ally(s, eco, other)
    if ally is None:
        raise forbidden(f"{eco} has no active alliance with {other}")
    if not ally.shares.shares_people():
        raise forbidden(f"the alliance's terms do not share the people of {other} with {eco}")
    if ally.shares.introductions is Introductions.NONE:
        raise forbidden(f"the alliance's terms allow no introductions to people of {other}")
    return ally


def curation(ally: Ally) -> tuple[str | None, str]:
    """(curators, awaiting) of a new introduction to a person of ``ally.eco``."""
    terms = ally.shares
    if terms.introductions is not Introductions.CURATED:
        return None, ""
    owner_curates = terms.curators in (Curators.OWNER, Curators.BOTH)
    return terms.curators.value, ally.eco if owner_curates else ""


async def still_allied(s: AsyncSession, alliances: AllianceStore, row: IntroductionRow) -> None:
    """Refuse acting on an introduction across an alliance that is not active."""
    if is_across(row) and await alliances.ally(s, row.eco, b_eco(row)) is None:
        raise forbidden(f"the alliance between {row.eco} and {b_eco(row)} is not active")
