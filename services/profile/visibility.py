"""Who sees which field: viewer tiers and the visibility levels they open.

Levels nest, from widest to narrowest: ``ecosystem`` ⊃ ``connections`` ⊃
``company`` ⊃ ``private``. A viewer's *tier* towards a profile is the narrowest
level that viewer may see:

- a person's profile: the person themself → private; a colleague (same partner)
  → company; someone connected through an introduction → connections; anyone
  else in the ecosystem → ecosystem.
- a company profile: its partner admins → private; its other members →
  company; someone connected with any of its people → connections; anyone else
  → ecosystem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.claims import Claims, Role
from contracts.v1.profile import Visibility

ORDER: tuple[Visibility, ...] = (
    Visibility.ECOSYSTEM,
    Visibility.CONNECTIONS,
    Visibility.COMPANY,
    Visibility.PRIVATE,
)
TIERS: tuple[str, ...] = tuple(v.value for v in ORDER)


@dataclass(frozen=True)
class Viewer:
    sub: str
    partner: str | None
    is_partner_admin: bool = False
    is_broker: bool = False

    @classmethod
    def of(cls, claims: Claims) -> Viewer:
        return cls(
            sub=claims.sub,
            partner=claims.partner,
            is_partner_admin=claims.has_role(Role.PARTNER_ADMIN),
            is_broker=claims.has_role(Role.BROKER),
        )


def opens(tier: Visibility) -> frozenset[Visibility]:
    """The visibility levels a viewer of ``tier`` may see."""
    return frozenset(ORDER[: ORDER.index(tier) + 1])


def person_tier(viewer: Viewer, person: str, partner: str, connected: bool) -> Visibility:
    if viewer.sub == person:
        return Visibility.PRIVATE
    if viewer.partner is not None and viewer.partner == partner:
        return Visibility.COMPANY
    if connected:
        return Visibility.CONNECTIONS
    return Visibility.ECOSYSTEM


def own_company_tier(viewer: Viewer) -> Visibility:
    return Visibility.PRIVATE if viewer.is_partner_admin else Visibility.COMPANY


def company_tier(viewer: Viewer, partner: str, connected: bool) -> Visibility:
    if viewer.partner is not None and viewer.partner == partner:
        return own_company_tier(viewer)
    if connected:
        return Visibility.CONNECTIONS
    return Visibility.ECOSYSTEM


def visible_fields(
    fields: dict[str, Any], visibility: dict[str, str], names: tuple[str, ...], tier: Visibility
) -> dict[str, Any]:
    """The fields of a profile that a viewer of ``tier`` may see (others left out)."""
    allowed = opens(tier)
    return {
        name: fields.get(name)
        for name in names
        if Visibility(visibility.get(name, Visibility.ECOSYSTEM)) in allowed
    }


# Index tiers of what an allied viewer may see: the fields flagged "shared with allied
# ecosystems" among those the viewer's tier opens (ecosystem; connections when the two
# are connected across the alliance). Never company or private.
ALLIED_TIERS: dict[str, Visibility] = {
    "allied": Visibility.ECOSYSTEM,
    "allied_conn": Visibility.CONNECTIONS,
}


def allied_tier(connected: bool) -> Visibility:
    """An allied viewer's tier towards a profile: connections when connected across."""
    return Visibility.CONNECTIONS if connected else Visibility.ECOSYSTEM


def shares_with_allies(allied: dict[str, bool]) -> bool:
    """A profile appears across an alliance only when it flagged at least one field."""
    return any(allied.values())


def allied_fields(
    fields: dict[str, Any],
    visibility: dict[str, str],
    allied: dict[str, bool],
    names: tuple[str, ...],
    tier: Visibility,
) -> dict[str, Any]:
    """The fields an allied viewer of ``tier`` may see: visible to that tier *and* flagged."""
    assert tier in (Visibility.ECOSYSTEM, Visibility.CONNECTIONS), "allied tiers only"
    shown = visible_fields(fields, visibility, names, tier)
    return {name: value for name, value in shown.items() if allied.get(name)}
