"""Contracts of the profile service: operations (with their policies) and events.

Every field of a profile has a visibility, from widest to narrowest: ``ecosystem``
(everyone in the ecosystem), ``connections`` (people the owner is connected with
through an introduction, plus the owner's own company), ``company`` (the owner's
own company) and ``private`` (the owner only; for a company: its partner
admins). Reads, directory search, cards and tag clouds show a viewer only what
that viewer may see.

Events carry only what the whole ecosystem may see (fields whose visibility is
``ecosystem``): consumers such as matching never learn private fields.

Alliances (``contracts.v1.alliances``): separately from its visibility, each field has a
flag "shared with allied ecosystems" (``allied``). A viewer of an allied ecosystem sees a
field only when the field's visibility lets that viewer see it (``ecosystem``; or
``connections`` and the two are connected through an introduction across) *and* it is
flagged, and only while the alliance is active and the owner ecosystem's terms share its
people (people) or its companies (companies). A person or company appears across at all
only when it flagged at least one field; its name, its company's name and its
ecosystem's name (brand) are then shown. Allied reads go through the viewer's own
ecosystem's routes (``/v1/ecosystems/{eco}/allies/{ally}/...``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.claims import Role, Scope
from contracts.envelope import EventBase
from contracts.policy import Operation, Policy
from contracts.subjects import request_subject
from contracts.timestamps import Timestamp

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Tags = Annotated[list[Tag], Field(max_length=40)]


class Visibility(StrEnum):
    ECOSYSTEM = "ecosystem"
    CONNECTIONS = "connections"
    COMPANY = "company"
    PRIVATE = "private"


PersonField = Literal[
    "headline",
    "bio",
    "skills",
    "needs",
    "offers",
    "interests",
    "industries",
    "regions",
    "languages",
    "links",
]
CompanyField = Literal[
    "description",
    "capabilities",
    "needs",
    "offers",
    "certifications",
    "industries",
    "regions",
    "size",
]
PERSON_FIELDS: tuple[str, ...] = PersonField.__args__  # type: ignore[attr-defined]
COMPANY_FIELDS: tuple[str, ...] = CompanyField.__args__  # type: ignore[attr-defined]


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,500}$")]


class Badge(BaseModel):
    """A broker's verification, shown on profiles and cards."""

    verified: bool = False
    by: str | None = None
    note: str = ""
    at: Timestamp | None = None


# --------------------------------------------------------------------------- events


class PersonPublic(BaseModel):
    """A person's ecosystem-visible profile, as events carry it."""

    person: str = Field(description="subject id of the person (identity's sub)")
    partner: str
    name: str
    headline: str = ""
    bio: str = ""
    skills: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    offers: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    industries: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    verified: bool = False
    allied_fields: list[str] = Field(
        default_factory=list,
        description="the fields above the person shares with allied ecosystems",
    )


class CompanyPublic(BaseModel):
    partner: str
    name: str
    description: str = ""
    capabilities: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    offers: list[str] = Field(default_factory=list)
    certifications: list[str] = Field(default_factory=list)
    industries: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    size: str | None = None
    verified: bool = False
    allied_fields: list[str] = Field(
        default_factory=list,
        description="the fields above the company shares with allied ecosystems",
    )


class PersonProfileUpdated(EventBase):
    """A person's profile was created or changed (full public snapshot, not a diff)."""

    SOURCE: ClassVar[str] = "/services/profile"
    type: Literal["pm.v1.profile.person_updated"] = "pm.v1.profile.person_updated"
    source: str = SOURCE
    data: PersonPublic


class CompanyProfileUpdated(EventBase):
    SOURCE: ClassVar[str] = "/services/profile"
    type: Literal["pm.v1.profile.company_updated"] = "pm.v1.profile.company_updated"
    source: str = SOURCE
    data: CompanyPublic


class VerificationData(BaseModel):
    target_kind: Literal["person", "company"]
    target: str
    verified: bool
    broker: str
    note: str = ""


class ProfileVerified(EventBase):
    """A broker verified (or revoked the verification of) a person or company."""

    SOURCE: ClassVar[str] = "/services/profile"
    type: Literal["pm.v1.profile.verified"] = "pm.v1.profile.verified"
    source: str = SOURCE
    data: VerificationData


# --------------------------------------------------------------------------- requests


class PersonRef(BaseModel):
    eco: Ident
    person: Ident


class CompanyRef(BaseModel):
    eco: Ident
    partner: Ident


class PersonPatch(PersonRef):
    """Change some fields of one's own profile; omitted (or null) fields stay as they are."""

    model_config = ConfigDict(extra="forbid")
    headline: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    bio: Annotated[str, StringConstraints(max_length=4000)] | None = None
    skills: Tags | None = None
    needs: Tags | None = None
    offers: Tags | None = None
    interests: Tags | None = None
    industries: Tags | None = None
    regions: Tags | None = None
    languages: Tags | None = None
    links: Annotated[list[Link], Field(max_length=20)] | None = None
    visibility: dict[PersonField, Visibility] | None = None
    allied: dict[PersonField, bool] | None = Field(
        default=None,
        description="per field: shared with allied ecosystems (omitted fields stay as they are)",
    )


class CompanyPatch(CompanyRef):
    model_config = ConfigDict(extra="forbid")
    description: Annotated[str, StringConstraints(max_length=4000)] | None = None
    capabilities: Tags | None = None
    needs: Tags | None = None
    offers: Tags | None = None
    certifications: Tags | None = None
    industries: Tags | None = None
    regions: Tags | None = None
    size: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    visibility: dict[CompanyField, Visibility] | None = None
    allied: dict[CompanyField, bool] | None = Field(
        default=None,
        description="per field: shared with allied ecosystems (omitted fields stay as they are)",
    )


class AlliedPersonRef(PersonRef):
    """A person of the allied ecosystem ``ally``, read through the viewer's ecosystem ``eco``."""

    ally: Ident


class AlliedCloudRequest(AlliedPersonRef):
    limit: int = Field(default=20, ge=1, le=100)


class AlliedCompanyRef(CompanyRef):
    """A company of the allied ecosystem ``ally``, read through the viewer's ecosystem ``eco``."""

    ally: Ident


class CloudRequest(PersonRef):
    limit: int = Field(default=20, ge=1, le=100)


class CompanyCloudRequest(CompanyRef):
    limit: int = Field(default=20, ge=1, le=100)


class VerifyPerson(PersonRef):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class VerifyCompany(CompanyRef):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class DirectoryQuery(BaseModel):
    eco: Ident
    kind: Literal["person", "company"] = "person"
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    industry: Tag | None = None
    region: Tag | None = None
    skill: Tag | None = Field(default=None, description="people: a skill; companies: a capability")
    partner: Ident | None = None
    verified: bool | None = None
    sort: Literal["relevance", "name", "recent"] = "relevance"
    page: int = Field(default=1, ge=1, le=1000)
    page_size: int = Field(default=20, ge=1, le=100)
    allied: bool = Field(
        default=False,
        description="also search the active allied ecosystems that share their people "
        "(companies), on the fields each shares with allies only",
    )


class AuditQuery(BaseModel):
    eco: Ident
    limit: int = Field(default=50, ge=1, le=500)


# --------------------------------------------------------------------------- replies


class PersonView(BaseModel):
    """A person's profile as one viewer may see it: hidden fields are absent (null)."""

    person: str
    partner: str
    company_name: str
    name: str
    badge: Badge
    headline: str | None = None
    bio: str | None = None
    skills: list[str] | None = None
    needs: list[str] | None = None
    offers: list[str] | None = None
    interests: list[str] | None = None
    industries: list[str] | None = None
    regions: list[str] | None = None
    languages: list[str] | None = None
    links: list[Link] | None = None
    visibility: dict[str, Visibility] | None = Field(
        default=None, description="the per-field settings; only the owner sees them"
    )
    updated_at: Timestamp | None = None
    member_since: Timestamp | None = Field(default=None, description="when the profile was created")
    avatar: str | None = Field(default=None, description="hash of the profile picture, if any")
    allied: dict[str, bool] | None = Field(
        default=None, description="per field: shared with allied ecosystems; only the owner sees it"
    )
    ecosystem: str | None = Field(
        default=None, description="the allied ecosystem the profile belongs to (allied reads)"
    )
    ecosystem_name: str | None = Field(default=None, description="its display name (brand)")


class CompanyView(BaseModel):
    partner: str
    name: str
    badge: Badge
    description: str | None = None
    capabilities: list[str] | None = None
    needs: list[str] | None = None
    offers: list[str] | None = None
    certifications: list[str] | None = None
    industries: list[str] | None = None
    regions: list[str] | None = None
    size: str | None = None
    visibility: dict[str, Visibility] | None = None
    updated_at: Timestamp | None = None
    member_since: Timestamp | None = Field(default=None, description="when the profile was created")
    logo: str | None = Field(default=None, description="hash of the logo, if any")
    allied: dict[str, bool] | None = Field(
        default=None,
        description="per field: shared with allied ecosystems; only its partner admins see it",
    )
    ecosystem: str | None = Field(
        default=None, description="the allied ecosystem the company belongs to (allied reads)"
    )
    ecosystem_name: str | None = Field(default=None, description="its display name (brand)")


class CloudTerm(BaseModel):
    term: str
    weight: float = Field(description="relative weight, the strongest term is 1.0")
    posts: int = Field(description="how many posts, threads and notes use the term")


class TagCloud(BaseModel):
    terms: list[CloudTerm] = Field(default_factory=list)
    posts: int = Field(0, description="how many pieces of content the viewer may see contributed")


class Card(BaseModel):
    """Everything a hover card needs, in one call."""

    person: str
    name: str
    headline: str | None = None
    partner: str
    company_name: str
    badge: Badge
    cloud: TagCloud
    avatar: str | None = Field(default=None, description="hash of the profile picture, if any")
    ecosystem: str | None = Field(default=None, description="the allied ecosystem, if allied")
    ecosystem_name: str | None = None


class CompanyCard(BaseModel):
    partner: str
    name: str
    description: str | None = None
    badge: Badge
    cloud: TagCloud
    ecosystem: str | None = Field(default=None, description="the allied ecosystem, if allied")
    ecosystem_name: str | None = None


class DirectoryEntry(BaseModel):
    kind: Literal["person", "company"]
    id: str
    name: str
    partner: str
    verified: bool
    summary: str | None = Field(None, description="headline (people) or description (companies)")
    industries: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list, description="skills or capabilities")
    image: str | None = Field(default=None, description="hash of the avatar or logo, if any")
    ecosystem: str = Field(description="the ecosystem of the person or company")
    ecosystem_name: str | None = Field(
        default=None, description="its display name (brand), when known (allied results)"
    )


class DirectoryPage(BaseModel):
    total: int = Field(description="matches; when total_exact is false, at least this many")
    total_exact: bool = Field(
        default=True, description="false when counting stopped (1000 matches past this page)"
    )
    page: int
    page_size: int
    entries: list[DirectoryEntry]


class VerificationAuditEntry(BaseModel):
    at: Timestamp
    actor: str
    action: Literal["verified", "revoked"]
    target_kind: Literal["person", "company"]
    target: str
    note: str = ""


class AuditLog(BaseModel):
    entries: list[VerificationAuditEntry]


# --------------------------------------------------------------------------- operations

_ECO = "/v1/ecosystems/{eco}"
_READ = Policy(scope=Scope.PROFILE_READ)
_WRITE = Policy(scope=Scope.PROFILE_WRITE)
_ADMIN = Policy(
    scope=Scope.PROFILE_WRITE,
    roles=frozenset({Role.PARTNER_ADMIN}),
    partner_param="partner",
    partner_bypass=frozenset(),
)
_BROKER = Policy(scope=Scope.BROKER_CURATE, roles=frozenset({Role.BROKER}))
_AUDITOR = Policy(scope=Scope.BROKER_CURATE, roles=frozenset({Role.BROKER, Role.OPERATOR}))
_SUMMARIES = {
    "person.get": "A person's profile, showing only the fields the caller may see",
    "person.update": "Change one's own profile and its per-field visibility",
    "person.card": "Hover card: name, headline, company, badge and tag cloud in one call",
    "company.get": "A partner company's profile, as far as the caller may see it",
    "company.update": "Change one's own company profile (partner admins of that partner only)",
    "company.card": "A company's hover card with its tag cloud",
    "directory.search": "Search people or companies: full text, filters, sorting, pages",
    "person.verify": "A broker verifies a person, with a note",
    "person.revoke": "A broker revokes a person's verification",
    "company.verify": "A broker verifies a company, with a note",
    "company.revoke": "A broker revokes a company's verification",
    "verification.audit": "The audit trail of verifications and revocations, newest first",
    "ally.person.get": "A person of an allied ecosystem: exactly the fields shared with allies",
    "ally.person.card": "Hover card of a person of an allied ecosystem (shared fields only)",
    "ally.company.get": "A company of an allied ecosystem: exactly the fields shared with allies",
    "ally.company.card": "Hover card of a company of an allied ecosystem (shared fields only)",
}


def _op(
    name: str,
    route: str,
    req: type[BaseModel],
    rep: type[BaseModel],
    policy: Policy,
    summary: str | None = None,
) -> Operation:
    method, path = route.split(" ", 1)
    return Operation(
        name=f"profile.{name}",
        subject=request_subject("profile", name),
        method=method,
        path=_ECO + path,
        request=req,
        reply=rep,
        policy=policy,
        summary=summary or _SUMMARIES[name],
        tags=("profile",),
    )


_PERSON, _COMPANY = "/people/{person}", "/partners/{partner}"
GET_PERSON = _op("person.get", f"GET {_PERSON}", PersonRef, PersonView, _READ)
UPDATE_PERSON = _op("person.update", f"PATCH {_PERSON}", PersonPatch, PersonView, _WRITE)
PERSON_CARD = _op("person.card", f"GET {_PERSON}/card", CloudRequest, Card, _READ)
GET_COMPANY = _op("company.get", f"GET {_COMPANY}/profile", CompanyRef, CompanyView, _READ)
UPDATE_COMPANY = _op(
    "company.update", f"PATCH {_COMPANY}/profile", CompanyPatch, CompanyView, _ADMIN
)
COMPANY_CARD = _op("company.card", f"GET {_COMPANY}/card", CompanyCloudRequest, CompanyCard, _READ)
DIRECTORY = _op(
    "directory.search",
    "GET /directory",
    DirectoryQuery,
    DirectoryPage,
    Policy(scope=Scope.DIRECTORY_READ),
)
_VERIFY_PERSON, _VERIFY_COMPANY = f"{_PERSON}/verification", f"{_COMPANY}/verification"
VERIFY_PERSON = _op("person.verify", f"PUT {_VERIFY_PERSON}", VerifyPerson, PersonView, _BROKER)
REVOKE_PERSON = _op("person.revoke", f"DELETE {_VERIFY_PERSON}", VerifyPerson, PersonView, _BROKER)
VERIFY_COMPANY = _op(
    "company.verify", f"PUT {_VERIFY_COMPANY}", VerifyCompany, CompanyView, _BROKER
)
REVOKE_COMPANY = _op(
    "company.revoke", f"DELETE {_VERIFY_COMPANY}", VerifyCompany, CompanyView, _BROKER
)
AUDIT = _op("verification.audit", "GET /verifications/audit", AuditQuery, AuditLog, _AUDITOR)
_ALLY = "/allies/{ally}"
ALLY_PERSON = _op("ally.person.get", f"GET {_ALLY}{_PERSON}", AlliedPersonRef, PersonView, _READ)
ALLY_PERSON_CARD = _op(
    "ally.person.card", f"GET {_ALLY}{_PERSON}/card", AlliedCloudRequest, Card, _READ
)
ALLY_COMPANY = _op(
    "ally.company.get", f"GET {_ALLY}{_COMPANY}/profile", AlliedCompanyRef, CompanyView, _READ
)
ALLY_COMPANY_CARD = _op(
    "ally.company.card", f"GET {_ALLY}{_COMPANY}/card", AlliedCompanyRef, CompanyCard, _READ
)

OPERATIONS: tuple[Operation, ...] = (
    GET_PERSON,
    UPDATE_PERSON,
    PERSON_CARD,
    GET_COMPANY,
    UPDATE_COMPANY,
    COMPANY_CARD,
    DIRECTORY,
    VERIFY_PERSON,
    REVOKE_PERSON,
    VERIFY_COMPANY,
    REVOKE_COMPANY,
    AUDIT,
    ALLY_PERSON,
    ALLY_PERSON_CARD,
    ALLY_COMPANY,
    ALLY_COMPANY_CARD,
)
EVENTS: tuple[type[EventBase], ...] = (PersonProfileUpdated, CompanyProfileUpdated, ProfileVerified)
