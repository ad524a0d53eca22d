"""The expert model refitted on the ecosystem's own forum outcomes, and only kept if it helps.

A thread is a question someone asked; who replied in it is the outcome ("who helped
with which subject"). To learn from it without peeking at the answer, the features
of each thread are those of the ecosystem as it was when the thread began: a
snapshot at an earlier time ``t`` (declared profiles plus the forum behaviour before
``t``) is asked about the threads started after ``t``, and the people who replied
(not their author) are the positives. The weights are fitted (:func:`learn.fit`,
Gaussian prior at the current model) on an older window and compared with the
prior on the newest window; the refit replaces the prior only when it ranks the
newest outcomes better (mean reciprocal rank of the people who replied). With few
outcomes, or weights that do not generalise, the ecosystem keeps its prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from services.matching.engine import expert, learn
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Asker, Profile
from services.matching.engine.priors import WEEK, Activity

MIN_THREADS = 20  # answered threads a window needs before outcomes are learned from
STRENGTH = 1.0  # prior strength of the refit (per coefficient)


@dataclass(frozen=True)
class Thread:
    id: str
    author: str
    at: float  # seconds since the epoch
    title: str = ""
    text: str = ""
    public: bool = True


@dataclass(frozen=True)
class Reply:
    author: str
    thread: str
    at: float
    text: str = ""


@dataclass(frozen=True)
class Refit:
    model: learn.Model
    adopted: bool  # the refit ranked the newest outcomes better than the prior
    prior_mrr: float
    refit_mrr: float
    outcomes: int  # answered threads learned from


def snapshot(
    declared: Sequence[Profile],
    threads: Sequence[Thread],
    replies: Sequence[Reply],
    at: float,
    half_life: float = WEEK,
) -> tuple[MatchIndex, dict[str, dict[str, float]]]:
    """The index as it was at ``at``: declared profiles with the forum behaviour before it
    (threads started: ``asked``; threads replied in: ``helped``; public words only), the
    recency-weighted help given, and whom each person had helped (``favours``)."""
    by_id = {t.id: t for t in threads}
    asked: dict[str, list[str]] = {}
    helped: dict[str, list[str]] = {}
    favours: dict[str, dict[str, float]] = {}
    activity = Activity(half_life)
    for t in threads:
        if t.at < at and t.public:
            asked.setdefault(t.author, []).append(f"{t.title}\n{t.text}".strip())
    for r in sorted(replies, key=lambda r: r.at):
        if r.at >= at:
            continue
        activity.add(r.author, r.at)
        on = by_id.get(r.thread)
        if on is None or on.author == r.author:
            continue
        owed = favours.setdefault(r.author, {})
        owed[on.author] = owed.get(on.author, 0.0) + 1.0
        if on.public:
            helped.setdefault(r.author, []).extend(x for x in (on.title, r.text) if x)
    people = {p.id: p for p in declared}
    for pid in asked.keys() | helped.keys():
        people.setdefault(pid, Profile(pid, pid, pid))
    ix = MatchIndex()
    ix.build(
        replace(p, asked=tuple(asked.get(pid, ())), helped=tuple(helped.get(pid, ())))
        for pid, p in people.items()
    )
    for pid, value in activity.snapshot(at).items():
        ix.set_activity(pid, value)
    return ix, favours


def outcomes(
    declared: Sequence[Profile],
    threads: Sequence[Thread],
    replies: Sequence[Reply],
    start: float,
    end: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per thread started in [start, end) that others replied in (by ``end``): the
    features of every candidate in the snapshot at ``start`` and who replied."""
    repliers: dict[str, set[str]] = {}
    for r in replies:
        if r.at < end:
            repliers.setdefault(r.thread, set()).add(r.author)
    asked = [t for t in threads if start <= t.at < end and repliers.get(t.id, set()) - {t.author}]
    if not asked:
        return []
    ix, favours = snapshot(declared, threads, replies, start)
    out = []
    for t in asked:
        ctx = Asker(exclude={t.author}, helped=favours.get(t.author, {}))
        xs, ys = [], []
        for b, idx, x in expert.features(ix, f"{t.title}\n{t.text}", ctx=ctx):
            xs.append(x)
            ys.append(np.array([b.ids[i] in repliers[t.id] for i in idx]))
        if xs:
            out.append((np.vstack(xs), np.concatenate(ys)))
    return out


def _mrr(model: learn.Model, groups: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean reciprocal rank of the first person who replied (ties: pessimistic)."""
    total = 0.0
    for x, y in groups:
        if y.any():
            s = model.logit(x)
            best = s[y].max()
            total += 1.0 / (1 + int((s[~y] >= best).sum()))
    return total / max(len(groups), 1)


def refit(
    declared: Sequence[Profile],
    threads: Sequence[Thread],
    replies: Sequence[Reply],
    now: float,
    prior: learn.Model = expert.DEFAULT,
) -> Refit:
    """Fit on the threads of the older half of the history, keep the fit only if it ranks
    the newer half's repliers better than ``prior`` does; the kept weights are then
    refitted on the newer half (the most recent behaviour)."""
    times = sorted(t.at for t in threads if t.at < now)
    if len(times) < 3 * MIN_THREADS:
        return Refit(prior, False, 0.0, 0.0, 0)
    first, mid = times[len(times) // 3], times[2 * len(times) // 3]
    older = outcomes(declared, threads, replies, first, mid)
    newer = outcomes(declared, threads, replies, mid, now)
    if len(older) < MIN_THREADS or len(newer) < MIN_THREADS:
        return Refit(prior, False, 0.0, 0.0, len(older) + len(newer))

    def fit(groups: list[tuple[np.ndarray, np.ndarray]]) -> learn.Model:
        x = np.vstack([g[0] for g in groups])
        y = np.concatenate([g[1] for g in groups])
        return learn.fit(prior, x, y, STRENGTH)

    candidate = fit(older)
    before, after = _mrr(prior, newer), _mrr(candidate, newer)
    if after <= before:
        return Refit(prior, False, before, after, len(older) + len(newer))
    return Refit(fit(newer), True, before, after, len(older) + len(newer))
