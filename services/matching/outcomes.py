"""What introductions taught about people: acceptance priors, and who opted out of it.

A person's acceptance prior counts the introductions they accepted against those
they declined (one imaginary of each, so ½ means nothing known). "Already know each
other" is no verdict on the suggestion (it becomes a social tie instead); the other
reasons, "not relevant" and "no capacity" included, count as a decline. Someone who
opted out of being learned from keeps the neutral ½.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from services.matching.engine.priors import acceptance
from services.matching.models import IntroductionRow

NO_VERDICT = frozenset({"already_know"})


def counts(rows: Iterable[IntroductionRow]) -> tuple[Counter[str], Counter[str]]:
    accepted: Counter[str] = Counter()
    declined: Counter[str] = Counter()
    for r in rows:
        if r.a_accepted:
            accepted[r.a] += 1
        if r.b_accepted:
            accepted[r.b] += 1
        if r.status == "declined" and r.declined_by and r.decline_reason not in NO_VERDICT:
            declined[r.declined_by] += 1
    return accepted, declined


def priors(
    rows: Iterable[IntroductionRow], people: Iterable[str], no_learning: set[str]
) -> dict[str, float]:
    """The acceptance prior of each of ``people`` from the introductions they were in."""
    accepted, declined = counts(rows)
    return {p: 0.5 if p in no_learning else acceptance(accepted[p], declined[p]) for p in people}
