"""Alliances: an agreement between two ecosystems of one deployment, and its terms.

Identity owns alliances (its operators propose, counter, accept, reject, suspend, resume
and end them through identity's admin API). Every change is published as one
:class:`AllianceChanged` event carrying the alliance's whole state (a snapshot with a
version, not a diff); the services keep a projection of it (``mesh.alliances``) and
enforce the terms on the data they own.

Terms are per direction: ``terms[owner]`` is what the ecosystem ``owner`` shares with,
and grants to, the people and partners of the other ecosystem (the *viewer*). Nothing
crosses an alliance that its owner did not choose to share: a person's or company's field
is shown to an allied viewer only when its own visibility lets the viewer see it *and*
it is flagged "shared with allied ecosystems" (profile), whatever the terms say.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from contracts.claims import Role, Scope
from contracts.envelope import EventBase
from contracts.timestamps import Timestamp

if TYPE_CHECKING:
    from contracts.policy import Operation

EcoId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
PartnerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
GrantingPartner = Annotated[
    str, StringConstraints(pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9._:@-]{0,127})$")
]
"""A partner in :attr:`DirectionTerms.connector_partners`, or ``*`` for every partner."""

ALL_PARTNERS = "*"
"""In :attr:`DirectionTerms.connector_partners`: every partner of the owner may grant."""


class AllianceStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for the side that did not make the latest offer
    ACTIVE = "active"  # agreed: the terms apply
    SUSPENDED = "suspended"  # paused by either side: nothing crosses; may be resumed
    REJECTED = "rejected"  # the proposal was turned down (final)
    ENDED = "ended"  # ended or withdrawn by either side (final)


FINAL_STATUSES = frozenset({AllianceStatus.REJECTED, AllianceStatus.ENDED})


class Sharing(StrEnum):
    """What the owner shares with the other ecosystem, widest last."""

    NOTHING = "nothing"
    COMPANIES = "companies"  # its companies (the fields each company flagged for allies)
    PEOPLE = "people"  # its companies and its people (the fields each flagged for allies)


class Introductions(StrEnum):
    """Whether the viewer's people may be introduced to the owner's people."""

    NONE = "none"
    OPEN = "open"  # double opt-in, like any introduction
    CURATED = "curated"  # double opt-in after a broker named by ``curators`` approves


class Curators(StrEnum):
    OWNER = "owner"  # brokers of the ecosystem that shares
    VIEWER = "viewer"  # brokers of the ecosystem that is shared with
    BOTH = "both"  # a broker of each side


ActingRole = Literal["member", "partner_admin", "broker"]


def _member() -> list[ActingRole]:
    return ["member"]


class DirectionTerms(BaseModel):
    """What one ecosystem (the owner) shares with and grants to the other one."""

    model_config = ConfigDict(extra="forbid")

    share: Sharing = Sharing.NOTHING
    roles: Annotated[list[ActingRole], Field(max_length=3)] = Field(
        default_factory=_member,
        description="roles the other side's people get when acting in the owner's ecosystem "
        "(exchanged tokens); never operator",
    )
    scopes: Annotated[list[Scope], Field(max_length=len(Scope))] = Field(
        default_factory=list,
        description="the most an exchanged token may carry in the owner's ecosystem",
    )
    introductions: Introductions = Introductions.NONE
    curators: Curators = Curators.OWNER
    connector_partners: Annotated[list[GrantingPartner], Field(max_length=500)] = Field(
        default_factory=list,
        description="partners of the owner that may grant connector operations to partners "
        f"of the other side; [{ALL_PARTNERS!r}] for every partner",
    )

    @model_validator(mode="after")
    def _sound(self) -> DirectionTerms:
        if Scope.ADMIN in self.scopes:
            raise ValueError("the admin scope never crosses an alliance")
        if ALL_PARTNERS in self.connector_partners and len(self.connector_partners) > 1:
            raise ValueError(
                f"connector_partners is either [{ALL_PARTNERS!r}] or a list of partners"
            )
        return self

    def shares_people(self) -> bool:
        return self.share is Sharing.PEOPLE

    def shares_companies(self) -> bool:
        return self.share in (Sharing.COMPANIES, Sharing.PEOPLE)

    def may_grant(self, partner: str) -> bool:
        """May the owner's ``partner`` grant connector operations across?"""
        return ALL_PARTNERS in self.connector_partners or partner in self.connector_partners

    @property
    def acting_roles(self) -> tuple[Role, ...]:
        return tuple(Role(r) for r in self.roles)


class AllianceState(BaseModel):
    """An alliance as it stands: the payload of :class:`AllianceChanged`."""

    model_config = ConfigDict(extra="forbid")

    alliance: str = Field(min_length=1, max_length=64, description="the alliance's id")
    ecosystems: Annotated[list[EcoId], Field(min_length=2, max_length=2)] = Field(
        description="the two ecosystems; the first proposed the alliance"
    )
    names: dict[str, str] = Field(
        default_factory=dict, description="each ecosystem's display name (its brand)"
    )
    status: AllianceStatus
    version: int = Field(
        ge=1, description="grows by one with every change; consumers keep the highest"
    )
    offered_by: EcoId = Field(
        description="the ecosystem whose offer (proposal or counter) is on the table"
    )
    terms: dict[EcoId, DirectionTerms] = Field(
        description="per owner ecosystem: what it shares with and grants to the other"
    )
    changed_at: Timestamp
    changed_by: str = Field(max_length=256, description="the operator (sub) who made the change")
    active_since: Timestamp | None = Field(default=None, description="when it last became active")

    @model_validator(mode="after")
    def _two_sides(self) -> AllianceState:
        a, b = self.ecosystems
        if a == b:
            raise ValueError("an alliance joins two different ecosystems")
        if set(self.terms) != {a, b}:
            raise ValueError("terms name exactly the two ecosystems")
        if self.offered_by not in (a, b):
            raise ValueError("offered_by is one of the two ecosystems")
        return self

    def other(self, eco: str) -> str:
        a, b = self.ecosystems
        if eco == a:
            return b
        if eco == b:
            return a
        raise ValueError(f"{eco!r} is not part of alliance {self.alliance}")

    def shared_by(self, owner: str) -> DirectionTerms:
        """What ``owner`` shares with the other side."""
        return self.terms[owner]

    @property
    def active(self) -> bool:
        return self.status is AllianceStatus.ACTIVE

    def name_of(self, eco: str) -> str:
        return self.names.get(eco) or eco


class AllianceChanged(EventBase):
    """An alliance was proposed, countered, accepted, rejected, suspended, resumed or
    ended. ``ecosystem`` is the alliance's first ecosystem; ``subject`` its id. Consumers
    keep the state with the highest ``version`` and, when an alliance stops being active,
    purge what the other side's data left in their indexes and caches."""

    SOURCE: ClassVar[str] = "/identity"
    type: Literal["pm.v1.identity.alliance_changed"] = "pm.v1.identity.alliance_changed"
    source: str = SOURCE
    data: AllianceState


EVENTS: tuple[type[EventBase], ...] = (AllianceChanged,)
OPERATIONS: tuple[Operation, ...] = ()
