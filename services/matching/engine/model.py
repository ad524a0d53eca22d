"""Plain data of the matching engine: profiles, weights, filters and scored results."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Profile:
    """What the engine knows of a person (or a company): public fields only.

    ``needs`` … ``regions`` are what the person declared; ``asked`` and ``helped`` are
    what they did in public forums: the threads they started (a need voiced) and the
    threads they replied in, with their reply (help given on that subject).
    """

    id: str
    partner: str
    name: str = ""
    needs: tuple[str, ...] = ()
    offers: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    asked: tuple[str, ...] = ()
    helped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Weights:
    """How the parts of a score combine (see ``MatchIndex``)."""

    reciprocal: float = 0.7
    interest: float = 0.15
    social: float = 0.15
    fit_base: float = 0.6  # reciprocal × (base + region + industry): fit lies in [base, 1]
    fit_region: float = 0.25
    fit_industry: float = 0.15
    term: float = 0.5  # a leftover word counts half of a taxonomy concept
    skills: float = 0.5  # skills count as half an offer and half an interest
    max_df: float = 0.05  # leftover words in more than this share of profiles are dropped…
    max_df_min_n: int = 2000  # …once the index has at least this many profiles
    decline_penalty: float = 0.7  # per decline of someone of that partner
    # Both directions, weighted (a one-sided need→offer match still counts):
    # reciprocal = mutual·harmonic(a→b, b→a) + (1 − mutual)·(direct·a→b + (1 − direct)·b→a)
    mutual: float = 0.5
    direct: float = 0.7
    # Expert finding: what b has written about a need, beside what b offers for it.
    written_interest: float = 0.5
    written_need: float = 0.3
    related: float = 0.5  # a word the ecosystem uses alongside a need's word: half its weight


@dataclass(frozen=True)
class Filter:
    regions: frozenset[str] = frozenset()
    industries: frozenset[str] = frozenset()
    partners: frozenset[str] = frozenset()
    min_score: float = 0.0
    include_same_partner: bool = False


@dataclass(frozen=True, slots=True)
class Scored:
    id: str
    partner: str
    name: str
    score: float
    ab: float
    ba: float
    reciprocal: float
    interest: float
    social: float


@dataclass(frozen=True)
class ReasonPart:
    kind: str
    field_a: str
    field_b: str
    concept: str | None
    terms_a: tuple[str, ...]
    terms_b: tuple[str, ...]
    weight: float
    text: str = ""  # the reason as a sentence a person can read (see engine.explain)


@dataclass
class Asker:
    """Per-query context that is not part of the index: exclusions, penalties, social ties."""

    exclude: set[str] = field(default_factory=set)
    penalties: dict[str, float] = field(default_factory=dict)  # partner → factor
    social: dict[str, float] = field(default_factory=dict)  # id → proximity in [0, 1]
    helped: dict[str, float] = field(default_factory=dict)  # id → times the asker helped them
