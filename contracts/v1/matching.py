"""Contracts of the matching service: operations (with their policies) and events.

Matching reads the public profiles (profile events) and social signals (collaboration
events) of an ecosystem, suggests people and companies who complement each other,
and runs introductions through a double opt-in workflow:

    proposed ──curate:approve──► approved ──accept (one)──► accepted ──accept (other)──► connected
        │                           │                          │
        └─curate:reject─► rejected  └────── decline ───────────┴──► declined

Across an alliance (``ProposeRequest.b_eco``): ``a`` is a person of the route's ecosystem,
``b`` one of the allied ecosystem ``b_eco``, allowed only while the alliance is active and
its terms (owner: ``b_eco``) allow introductions; when curated, a broker of each side the
terms name must approve (``Introduction.awaiting``); each person accepts through their
own ecosystem's routes. An open introduction across is ``withdrawn`` when the alliance
stops being active.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.claims import Role, Scope
from contracts.envelope import EventBase
from contracts.policy import Operation, Policy
from contracts.subjects import request_subject
from contracts.timeseries import TimeSeries, TimeSeriesQuery
from contracts.timestamps import Timestamp
from contracts.v1.alliances import EcoId

IntroStatus = Literal[
    "proposed", "approved", "rejected", "accepted", "declined", "connected", "withdrawn"
]
DeclineReason = Literal["not_relevant", "no_capacity", "already_know", "other"]
CURATORS: frozenset[Role] = frozenset({Role.BROKER, Role.OPERATOR})

_ID = Field(min_length=1, max_length=200)


class IntroductionData(BaseModel):
    introduction: str
    a: str
    a_partner: str
    b: str
    b_partner: str
    status: IntroStatus
    broker: str | None = None
    note: str = ""
    score: float | None = Field(default=None, description="reciprocal score when proposed")
    actor: str | None = Field(default=None, description="who made this transition")
    reason: str | None = Field(default=None, description="decline reason, when declined")
    a_eco: str | None = Field(
        default=None,
        description="a's ecosystem when the introduction crosses an alliance (none: the "
        "event's ecosystem)",
    )
    b_eco: str | None = Field(
        default=None,
        description="b's ecosystem when the introduction crosses an alliance (none: the "
        "event's ecosystem)",
    )


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


# ---------------------------------------------------------------- suggestions


class Reason(BaseModel):
    """One part of why a suggestion was made: which fields and terms matched."""

    kind: Literal["need_offer", "offer_need", "interest", "region", "industry", "social"]
    field_a: str = Field(description="field of the asker, e.g. needs")
    field_b: str = Field(description="field of the suggested party, e.g. offers")
    concept: str | None = Field(default=None, description="taxonomy concept both terms map to")
    terms_a: list[str] = Field(default_factory=list)
    terms_b: list[str] = Field(default_factory=list)
    weight: float = 0.0
    text: str = Field(default="", description="the reason as a sentence a person can read")


class Suggestion(BaseModel):
    id: str = Field(description="person subject id, or partner id for company suggestions")
    partner: str
    name: str
    score: float
    a_to_b: float = Field(description="how well the suggested party serves the asker's needs")
    b_to_a: float = Field(description="how well the asker serves the suggested party's needs")
    reciprocal: float = Field(
        description="both directions combined: mutual interest highest, one-sided still counts"
    )
    interest: float
    social: float
    reasons: list[Reason]
    ecosystem: str | None = Field(
        default=None,
        description="the suggested person's ecosystem when it is an allied one (none: the "
        "asker's own)",
    )
    ecosystem_name: str | None = Field(
        default=None, description="the allied ecosystem's display name (its brand)"
    )


class SuggestionFilters(BaseModel):
    k: int = Field(default=10, ge=1, le=50)
    regions: list[str] = Field(default_factory=list, description="only parties in these regions")
    industries: list[str] = Field(default_factory=list)
    partners: list[str] = Field(default_factory=list, description="only these partners")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    include_same_partner: bool = Field(
        default=False, description="also suggest people of the asker's own company"
    )


class PersonSuggestionsRequest(SuggestionFilters):
    eco: str = _ID
    person: str = _ID
    allied: bool = Field(
        default=False,
        description="also suggest people of allied ecosystems whose terms share people, "
        "scored only on the fields each shares with allies",
    )


class PartnerSuggestionsRequest(SuggestionFilters):
    eco: str = _ID
    partner: str = _ID


class SuggestionsReply(BaseModel):
    subject: str
    suggestions: list[Suggestion]


class ExpertsRequest(BaseModel):
    """ "Help me with this need": a need or a question against everyone's offers and writing."""

    eco: str = _ID
    text: str = Field(min_length=1, max_length=20_000, description="the need or question")
    k: int = Field(default=10, ge=1, le=50)


class Expert(BaseModel):
    id: str
    partner: str
    name: str
    probability: float = Field(description="estimated chance this person helps with it")
    helped: float = Field(description="recent help given to others (answers, replies)")
    reasons: list[str] = Field(default_factory=list, description="why, in plain words")


class ExpertsReply(BaseModel):
    experts: list[Expert]


class MatchingPreferences(BaseModel):
    """A person's say: whether they are suggested, and whether their outcomes train the model."""

    eco: str = _ID
    person: str = _ID
    suggest_me: bool = Field(default=True, description="false: never suggested to anyone")
    learn_from_me: bool = Field(
        default=True, description="false: my accepts, declines and replies train nothing"
    )


# ---------------------------------------------------------------- introductions


class IntroductionHistoryEntry(BaseModel):
    at: Timestamp
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str = ""


class Introduction(BaseModel):
    id: str
    a: str
    a_partner: str
    b: str
    b_partner: str
    status: IntroStatus
    score: float | None = None
    proposed_by: str
    broker: str | None = None
    note: str = ""
    a_accepted: bool = False
    b_accepted: bool = False
    declined_by: str | None = None
    decline_reason: str | None = None
    reasons: list[Reason] = Field(default_factory=list)
    created_at: Timestamp
    updated_at: Timestamp
    history: list[IntroductionHistoryEntry] = Field(default_factory=list)
    a_eco: str = Field(default="", description="a's ecosystem")
    b_eco: str = Field(default="", description="b's ecosystem (an allied one when it differs)")
    awaiting: list[str] = Field(
        default_factory=list,
        description="ecosystems whose broker must still approve it (curated across an alliance)",
    )


class ListIntroductionsRequest(BaseModel):
    eco: str = _ID
    status: IntroStatus | None = None
    person: str | None = Field(default=None, description="brokers: only this person's")
    limit: int = Field(default=100, ge=1, le=500)


class IntroductionsReply(BaseModel):
    introductions: list[Introduction]


class ProposeRequest(BaseModel):
    eco: str = _ID
    a: str = _ID
    b: str = _ID
    note: str = Field(default="", max_length=2000)
    b_eco: EcoId | None = Field(
        default=None,
        description="b's ecosystem when it is an allied one (none: the route's ecosystem)",
    )


class IntroductionRef(BaseModel):
    eco: str = _ID
    introduction: str = _ID


class DeclineRequest(IntroductionRef):
    reason: DeclineReason = "other"
    comment: str = Field(default="", max_length=2000)


class CurateRequest(IntroductionRef):
    action: Literal["approve", "reject", "note"]
    note: str = Field(default="", max_length=2000)


class OptimiseRequest(BaseModel):
    eco: str = _ID
    capacity: int = Field(default=3, ge=1, le=20, description="introductions per person a week")
    min_score: float = Field(default=0.05, ge=0.0, le=1.0)
    candidates: int = Field(default=10, ge=1, le=50, description="candidates per person")
    fairness_floor: bool = Field(
        default=True, description="first give everyone with a viable match at least one"
    )
    dry_run: bool = False


class OptimisedPair(BaseModel):
    a: str
    b: str
    score: float
    probability: float = Field(
        default=0.0, description="calibrated chance that both accept (what the plan maximises)"
    )
    introduction: str | None = None


class OptimiseReply(BaseModel):
    proposals: list[OptimisedPair]
    objective: float = Field(
        description="expected successful introductions: the chosen pairs' summed probabilities"
    )
    upper_bound: float = Field(description="LP-relaxation bound of the objective")
    gap: float = Field(description="relative distance to the bound (0.01 = within 1%)")
    viable_people: int
    covered_people: int
    solver: str


_READ = Policy(scope=Scope.MATCHING_READ)
_INTRO = Policy(scope=Scope.INTRO_WRITE)
_CURATE = Policy(scope=Scope.BROKER_CURATE, roles=CURATORS)
_BASE = "/v1/ecosystems/{eco}"


def _op(
    name: str,
    method: str,
    path: str,
    req: type,
    rep: type,
    pol: Policy,
    summary: str,
    status: int = 200,
) -> Operation:
    return Operation(
        name=f"matching.{name}",
        subject=request_subject("matching", name),
        method=method,
        path=_BASE + path,
        request=req,
        reply=rep,
        policy=pol,
        summary=summary,
        status=status,
        tags=("matching",),
    )


PERSON_SUGGESTIONS = _op(
    "person_suggestions",
    "GET",
    "/people/{person}/suggestions",
    PersonSuggestionsRequest,
    SuggestionsReply,
    _READ,
    "Top-k people who complement a person (self, brokers, operators)",
)
PARTNER_SUGGESTIONS = _op(
    "partner_suggestions",
    "GET",
    "/partners/{partner}/suggestions",
    PartnerSuggestionsRequest,
    SuggestionsReply,
    Policy(scope=Scope.MATCHING_READ, partner_param="partner", partner_bypass=CURATORS),
    "Top-k companies that complement a partner company",
)
LIST_INTRODUCTIONS = _op(
    "list_introductions",
    "GET",
    "/introductions",
    ListIntroductionsRequest,
    IntroductionsReply,
    _READ,
    "My introductions (brokers and operators: all of the ecosystem)",
)
INTRODUCTION_TIMELINE = _op(
    "introduction_timeline",
    "GET",
    "/stats/introductions",
    TimeSeriesQuery,
    TimeSeries,
    _READ,
    "Introductions reaching each status per day or week: mine (brokers and operators: all)",
)
GET_INTRODUCTION = _op(
    "get_introduction",
    "GET",
    "/introductions/{introduction}",
    IntroductionRef,
    Introduction,
    _READ,
    "One introduction with its audit history (its two people, brokers, operators)",
)
PROPOSE_INTRODUCTION = _op(
    "propose_introduction",
    "POST",
    "/introductions",
    ProposeRequest,
    Introduction,
    _CURATE,
    "A broker introduces two people by hand (approved at once)",
    status=201,
)
ACCEPT_INTRODUCTION = _op(
    "accept_introduction",
    "POST",
    "/introductions/{introduction}/accept",
    IntroductionRef,
    Introduction,
    _INTRO,
    "One of the two people accepts; both accepted means connected",
)
DECLINE_INTRODUCTION = _op(
    "decline_introduction",
    "POST",
    "/introductions/{introduction}/decline",
    DeclineRequest,
    Introduction,
    _INTRO,
    "One of the two people declines, with an optional reason",
)
CURATE_INTRODUCTION = _op(
    "curate_introduction",
    "POST",
    "/introductions/{introduction}/curate",
    CurateRequest,
    Introduction,
    _CURATE,
    "A broker approves, rejects or annotates a proposed introduction",
)
OPTIMISE_INTRODUCTIONS = _op(
    "optimise_introductions",
    "POST",
    "/introductions/optimise",
    OptimiseRequest,
    OptimiseReply,
    _CURATE,
    "Propose the optimal set of introductions under per-person capacity",
)

FIND_EXPERTS = _op(
    "find_experts",
    "POST",
    "/experts",
    ExpertsRequest,
    ExpertsReply,
    _READ,
    "People likely to help with a need or a question (expert finding)",
)
SET_PREFERENCES = _op(
    "set_preferences",
    "PUT",
    "/people/{person}/matching-preferences",
    MatchingPreferences,
    MatchingPreferences,
    _INTRO,
    "A person opts out of (or back into) being suggested and being learned from",
)

OPERATIONS: tuple[Operation, ...] = (
    PERSON_SUGGESTIONS,
    PARTNER_SUGGESTIONS,
    LIST_INTRODUCTIONS,
    INTRODUCTION_TIMELINE,
    GET_INTRODUCTION,
    PROPOSE_INTRODUCTION,
    ACCEPT_INTRODUCTION,
    DECLINE_INTRODUCTION,
    CURATE_INTRODUCTION,
    OPTIMISE_INTRODUCTIONS,
    FIND_EXPERTS,
    SET_PREFERENCES,
)
EVENTS: tuple[type[EventBase], ...] = (IntroductionChanged, IntroductionConnected)
