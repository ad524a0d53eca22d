"""Real Q&A posts (Stack Exchange dump format) as a time-split expert-finding task.

At each cut-off, profiles come only from what people wrote before it; the queries
are the questions asked between it and the next cut-off; the candidates are everyone
who answered anything before it (never the asker); the truth is who answered (other
than the asker). An answerer with no history before the cut-off stays in the truth,
so it counts as a miss for every method.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

CUT_START = 0.2  # the first cut-off after this share of the questions…
CUT_STEP = 0.15  # …then one after every further share of this size


@dataclass(frozen=True)
class Post:
    id: str
    kind: str  # "q" or "a"
    when: datetime
    author: str
    title: str
    body: str  # HTML, as in the dump
    tags: tuple[str, ...]
    parent: str | None


@dataclass
class Person:
    """What one person wrote before a cut-off."""

    questions: list[Post] = field(default_factory=list)
    answers: list[Post] = field(default_factory=list)
    answered_titles: list[str] = field(default_factory=list)


@dataclass
class Query:
    question: Post
    truth: frozenset[str]
    week: int  # week since the cut-off (capacity is per expert per week)


@dataclass
class Split:
    cutoff: datetime
    people: dict[str, Person]
    candidates: list[str]  # answered anything before the cut-off
    queries: list[Query]


def load(path: Path) -> list[Post]:
    out = []
    # A local, read-only data dump the operator chose, not input from the network.
    for row in ET.parse(path).getroot():  # noqa: S314
        r = row.attrib
        if r.get("PostTypeId") not in ("1", "2") or not r.get("OwnerUserId"):
            continue
        tags = r.get("Tags", "").strip("<>").split("><") if r.get("Tags") else []
        out.append(
            Post(
                r["Id"],
                "q" if r["PostTypeId"] == "1" else "a",
                datetime.fromisoformat(r["CreationDate"]),
                r["OwnerUserId"],
                r.get("Title", ""),
                r.get("Body", ""),
                tuple(t for t in tags if t),
                r.get("ParentId"),
            )
        )
    return sorted(out, key=lambda p: p.when)


def cutoffs(posts: list[Post]) -> list[datetime]:
    """Cut-offs at fixed shares of the question stream (no look at its content)."""
    qs = [p.when for p in posts if p.kind == "q"]
    out, share = [], CUT_START
    while share < 1.0 - 1e-9:
        out.append(qs[int(share * len(qs))])
        share += CUT_STEP
    return out


def splits(posts: list[Post]) -> list[Split]:
    answerers: dict[str, set[str]] = defaultdict(set)
    by_id = {p.id: p for p in posts}
    for p in posts:
        if p.kind == "a" and p.parent:
            answerers[p.parent].add(p.author)
    cuts = cutoffs(posts)
    out = []
    for i, cut in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else None
        people: dict[str, Person] = defaultdict(Person)
        for p in posts:
            if p.when >= cut:
                break
            if p.kind == "q":
                people[p.author].questions.append(p)
            else:
                people[p.author].answers.append(p)
                parent = by_id.get(p.parent or "")
                if parent is not None:
                    people[p.author].answered_titles.append(parent.title)
        cands = sorted(a for a, person in people.items() if person.answers)
        queries = []
        for p in posts:
            if p.kind != "q" or p.when < cut or (end is not None and p.when >= end):
                continue
            truth = frozenset(answerers[p.id] - {p.author})
            if truth:
                queries.append(Query(p, truth, (p.when - cut).days // 7))
        out.append(Split(cut, dict(people), cands, queries))
    return out
