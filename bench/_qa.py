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
    answered: list[Post] = field(default_factory=list)  # the question of each answer


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
    posts: list[Post]  # the whole stream (only ``training`` looks past the cut-off's history)


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


def snapshot(posts: list[Post], cut: datetime) -> tuple[dict[str, Person], list[str]]:
    """What everyone wrote before ``cut``, and who had answered anything by then."""
    by_id = {p.id: p for p in posts}
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
                people[p.author].answered.append(parent)
    return dict(people), sorted(a for a, person in people.items() if person.answers)


def window(
    posts: list[Post], start: datetime, end: datetime | None, known_by: datetime | None
) -> list[Query]:
    """Questions asked in [start, end) that someone other than the asker answered
    (counting only answers posted before ``known_by``, when given)."""
    answerers: dict[str, set[str]] = defaultdict(set)
    for p in posts:
        if p.kind == "a" and p.parent and (known_by is None or p.when < known_by):
            answerers[p.parent].add(p.author)
    out = []
    for p in posts:
        if p.kind != "q" or p.when < start or (end is not None and p.when >= end):
            continue
        truth = frozenset(answerers[p.id] - {p.author})
        if truth:
            out.append(Query(p, truth, (p.when - start).days // 7))
    return out


def splits(posts: list[Post]) -> list[Split]:
    cuts = cutoffs(posts)
    out = []
    for i, cut in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else None
        people, cands = snapshot(posts, cut)
        out.append(Split(cut, people, cands, window(posts, cut, end, None), posts))
    return out


def training(split: Split) -> Split | None:
    """Outcomes known at the cut-off, for learning: the snapshot at an earlier inner
    cut-off (half the questions before it) against the questions asked since, with
    the answers posted before the cut-off as truth."""
    before = [p.when for p in split.posts if p.kind == "q" and p.when < split.cutoff]
    if len(before) < 4:
        return None
    inner = before[len(before) // 2]
    people, cands = snapshot(split.posts, inner)
    queries = window(split.posts, inner, split.cutoff, split.cutoff)
    return Split(inner, people, cands, queries, split.posts) if queries and cands else None
