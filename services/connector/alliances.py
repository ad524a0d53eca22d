"""Alliances as the connector enforces them: grants, calls and flows across two ecosystems.

A partner ``p`` of ecosystem ``A`` may grant one of its operations to a partner ``q`` of an
allied ecosystem ``B`` (a grant with ``grantee_eco = B``) when the alliance is active and
``A``'s terms (what ``A`` grants to ``B``) let ``p`` grant across. ``q`` invokes it at
``A``'s route with a token exchanged into ``A`` (``fed`` names ``B`` and ``q``), or from a
flow of ``B``. Every such call reads the alliance in the call's transaction (the
``mesh_alliances`` projection, :mod:`mesh.alliances`), so suspending or ending it, or
terms that stop letting ``p`` grant, refuse the next call at once; the grant itself is kept
(for the audit) and applies again when the alliance resumes.

Calls within one ecosystem never read the table: a caller is across only when its token
carries ``fed`` from another ecosystem (or its flow step names one).
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims, Scope
from contracts.envelope import EventBase
from contracts.v1.alliances import AllianceChanged
from mesh.alliances import AllianceStore, Ally
from mesh.errors import MeshError, conflict, forbidden
from services.connector import models
from services.connector.models import Grant

log = logging.getLogger(__name__)

store = AllianceStore(models.metadata)


def home_of(claims: Claims) -> str | None:
    """The caller's own ecosystem when its token crossed an alliance into ``claims.eco``."""
    fed = claims.fed
    return fed.eco if fed is not None and fed.eco != claims.eco else None


def viewer(claims: Claims) -> tuple[str | None, str | None]:
    """(partner, home): the caller's partner and, across an alliance, its ecosystem."""
    home = home_of(claims)
    if home is None:
        return claims.partner, None
    assert claims.fed is not None
    return claims.fed.partner, home


def own_routes_only(claims: Claims, what: str) -> None:
    """Refuse a caller whose token crossed an alliance: it reads and manages ``what`` in
    its own ecosystem (only invocations and single operations are served across)."""
    home = home_of(claims)
    if home is not None:
        raise forbidden(
            f"a caller from {home} reaches {what} through its own ecosystem's routes "
            f"(/v1/ecosystems/{home}/…)"
        )


async def on_event(s: AsyncSession, event: EventBase) -> None:
    """The ``connector-alliances`` consumer: keep the newest state of each alliance. The
    commit drops every cached plan (:mod:`services.connector.plans` watches the table)."""
    if not isinstance(event, AllianceChanged):
        return
    change = await store.record(s, event.data)
    if change.left_active:
        log.info(
            "alliance no longer active: grants across it stop applying",
            extra={"alliance": event.data.alliance, "status": event.data.status.value},
        )


def _inactive(owner_eco: str, other: str) -> MeshError:
    return forbidden(f"there is no active alliance between {owner_eco} and {other}")


def _may_grant(ally: Ally, owner_eco: str, owner_partner: str) -> MeshError | None:
    if not ally.receives.may_grant(owner_partner):
        return forbidden(
            f"the alliance's terms do not let {owner_partner} of {owner_eco} grant "
            f"operations to partners of {ally.eco}"
        )
    return None


async def grant_allowed(s: AsyncSession, owner_eco: str, owner_partner: str, other: str) -> Ally:
    """The alliance a new grant to a partner of ``other`` crosses: 409 when it is not active,
    403 when its terms do not let ``owner_partner`` grant across."""
    ally = await store.ally(s, owner_eco, other)
    if ally is None:
        raise conflict(
            f"there is no active alliance between {owner_eco} and {other}: "
            "grants across an alliance need one"
        )
    refused = _may_grant(ally, owner_eco, owner_partner)
    if refused is not None:
        raise refused
    return ally


async def call_refused(
    s: AsyncSession, owner_eco: str, owner_partner: str, home: str
) -> MeshError | None:
    """Why a partner of ``home`` may not call ``owner_partner``'s operation now (None: it
    may): the alliance must be active, its terms must still let the owner grant across
    and give exchanged tokens the invoke scope."""
    ally = await store.ally(s, owner_eco, home)
    if ally is None:
        return _inactive(owner_eco, home)
    if Scope.CONNECTOR_INVOKE not in ally.receives.scopes:
        return forbidden(
            f"the alliance's terms give partners of {home} no {Scope.CONNECTOR_INVOKE.value} "
            f"scope in {owner_eco}"
        )
    return _may_grant(ally, owner_eco, owner_partner)


async def active_across(s: AsyncSession, grants: list[Grant]) -> dict[str, bool]:
    """Per grant across an alliance (by id): whether it applies now."""
    allies: dict[tuple[str, str], Ally | None] = {}
    out: dict[str, bool] = {}
    for g in grants:
        if g.grantee_eco is None:
            continue
        key = (g.eco, g.grantee_eco)
        if key not in allies:
            allies[key] = await store.ally(s, *key)
        ally = allies[key]
        out[g.id] = (
            g.revoked_at is None
            and ally is not None
            and _may_grant(ally, g.eco, g.owner_partner) is None
        )
    return out
