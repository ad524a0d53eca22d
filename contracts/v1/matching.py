"""Contracts of the matching service: operations (with their policies) and events."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel

from contracts.envelope import EventBase
from contracts.policy import Operation


class IntroductionData(BaseModel):
    introduction: str
    a: str
    a_partner: str
    b: str
    b_partner: str
    status: Literal["proposed", "approved", "rejected", "accepted", "declined", "connected"]
    broker: str | None = None
    note: str = ""


class IntroductionChanged(EventBase):
    """Any transition of an introduction (proposed, curated, accepted, declined)."""

    SOURCE: ClassVar[str] = "/services/matching"
    type: Literal["pm.v1.matching.introduction_changed"] = "pm.v1.matching.introduction_changed"
    source: str = SOURCE
    data: IntroductionData


class IntroductionConnected(EventBase):
    """Both people accepted: they are connected (collaboration may open a space for them)."""

    SOURCE: ClassVar[str] = "/services/matching"
    type: Literal["pm.v1.matching.connected"] = "pm.v1.matching.connected"
    source: str = SOURCE
    data: IntroductionData


OPERATIONS: tuple[Operation, ...] = ()
EVENTS: tuple[type[EventBase], ...] = (IntroductionChanged, IntroductionConnected)
