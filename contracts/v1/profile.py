"""Contracts of the profile service: operations (with their policies) and events.

Events carry only what the whole ecosystem may see (fields whose visibility is
``ecosystem``): consumers such as matching never learn private fields.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.envelope import EventBase
from contracts.policy import Operation


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


OPERATIONS: tuple[Operation, ...] = ()
EVENTS: tuple[type[EventBase], ...] = (PersonProfileUpdated, CompanyProfileUpdated, ProfileVerified)
