"""Expert finding: "help me with this need" — a need or a question against everyone.

The text is featurised like a need and compared with what each person offers and
with everything else they wrote (their interests and skills, and the needs they
voiced: who asked about a subject writes about it). Each person's behaviour joins
the text evidence: how often they helped others (answers, replies) and how they
took introductions (``MatchIndex.priors``), and whether the asker helped them
before (``Asker.helped``: people return a favour). The parts combine in a logistic model
(:mod:`engine.learn`) whose output is the probability that this person helps; its
coefficients start at ``DEFAULT`` and are refitted on the ecosystem's own outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.matching.engine.index import MatchIndex, Snapshot
from services.matching.engine.learn import Model
from services.matching.engine.model import Asker, Filter, Profile
from services.matching.engine.vectors import Block, sparse_row, sublinear

FEATURES = ("offers", "interests", "needs_voiced", "helped", "acceptance", "reciprocity")
# The prior for an ecosystem with no outcomes: text about the need first, then what
# people wrote; a person's odds of helping grow with the help they gave (odds ∝ 1 +
# times helped), with the odds their introductions were accepted, and with the times
# the asker helped them (odds ∝ 1 + times).
DEFAULT = Model(FEATURES, (4.0, 2.0, 1.0, 1.0, 1.0, 1.0), -4.0)


@dataclass(frozen=True, slots=True)
class Expert:
    id: str
    partner: str
    name: str
    probability: float
    offers: float
    interests: float
    needs_voiced: float
    helped: float
    reciprocity: float = 0.0  # times the asker helped them before


def _block_features(ix: MatchIndex, b: Block, q, ctx: Asker) -> np.ndarray:  # type: ignore[no-untyped-def]
    w = b.width
    cols = [
        (q[:, :w] @ b.trans[f]).toarray().ravel() if q.nnz else np.zeros(len(b))
        for f in ("offer", "interest", "need")
    ]
    helped = np.log1p(b.activity)
    p = np.clip(b.prior, 0.02, 0.98)
    acceptance = np.log(p / (1 - p))
    owed = np.zeros(len(b))
    for other, times in ctx.helped.items():
        i = b.pos.get(other)
        if i is not None:
            owed[i] = math.log1p(max(0.0, times))
    return np.column_stack([*cols, helped, acceptance, owed])


def features(
    ix: MatchIndex,
    text: str,
    flt: Filter | None = None,
    ctx: Asker | None = None,
    snap: Snapshot | None = None,
) -> list[tuple[Block, np.ndarray, np.ndarray]]:
    """Per block: the rows that may be suggested and their feature matrix (``FEATURES``);
    ``snap``: the index as taken on the event loop when this runs in a worker thread."""
    flt, ctx = flt or Filter(include_same_partner=True), ctx or Asker()
    snap = snap or ix.snapshot()
    q = sparse_row(ix.vec.vector(_raw(ix, text), grow=False), len(ix.vec.idf))
    out = []
    for b, alive in snap.blocks:
        if not len(b):
            continue
        keep = alive.copy()
        if flt.partners:
            codes = [ix.vec.partners[p] for p in flt.partners if p in ix.vec.partners]
            keep &= np.isin(b.partner, codes)
        for other in (*ctx.exclude, *snap.opted_out):
            i = b.pos.get(other)
            if i is not None:
                keep[i] = False
        idx = np.flatnonzero(keep)
        if len(idx):
            out.append((b, idx, _block_features(ix, b, q, ctx)[idx]))
    return out


def _raw(ix: MatchIndex, text: str) -> dict[str, float]:
    raw: dict[str, float] = {}
    for key, _words in ix.featuriser.phrase(text):
        raw[key] = raw.get(key, 0.0) + (1.0 if key[0] == "c" else ix.w.term)
    raw = {k: sublinear(v) for k, v in raw.items()}
    return ix.related.expand(raw, ix.w.related) if ix.w.related else raw


def find_experts(
    ix: MatchIndex,
    text: str,
    k: int,
    flt: Filter | None = None,
    ctx: Asker | None = None,
    model: Model | None = None,
    snap: Snapshot | None = None,
) -> list[Expert]:
    """The k people most likely to help with ``text``, each with that probability
    (``snap``: see :func:`features`)."""
    model = model or DEFAULT
    floor = flt.min_score if flt else 0.0
    found: list[tuple[float, Profile, np.ndarray]] = []
    for b, idx, x in features(ix, text, flt, ctx, snap):
        prob = model.probability(x)
        for j in np.argsort(-prob, kind="stable")[:k]:
            if prob[j] > floor:
                found.append((float(prob[j]), b.profiles[idx[j]], x[j]))
    found.sort(key=lambda t: -t[0])
    return [
        Expert(
            p.id,
            p.partner,
            p.name,
            chance,
            offers=float(x[0]),
            interests=float(x[1]),
            needs_voiced=float(x[2]),
            helped=float(math.expm1(x[3])),
            reciprocity=float(math.expm1(x[5])),
        )
        for chance, p, x in found[:k]
    ]
