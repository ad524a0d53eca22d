"""The matching index: build, incremental upserts, one query, and top-k for everyone.

Score of b for asker a (every part in [0, 1], symmetric but for a's penalties)::

    a→b        = cos(needs_a, offers_b)          directional: does b serve a?
    b→a        = cos(needs_b, offers_a)
    reciprocal = m·harmonic(a→b, b→a) + (1 − m)·(d·a→b + (1 − d)·b→a)
                 (both wanting it scores highest; a one-sided need→offer match still counts)
    fit        = base + region overlap + industry overlap
    score      = (w_r·reciprocal·fit + w_i·cos(interests) + w_s·social)
                 × penalty_a(partner_b) × (½ + prior_b)

``prior_b`` in [0, 1] comes from b's behaviour (see :mod:`engine.priors`); ½, the
value for someone nothing is known of, leaves the score as it is.
Profiles live in a compiled :class:`Block` (with inverted indexes) plus a small
delta block of profiles added or changed since; an upsert touches only the delta,
and :meth:`compact` folds the delta into a new compiled block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from services.matching.engine.model import Asker, Filter, Profile, Scored, Weights
from services.matching.engine.text import Featuriser
from services.matching.engine.vectors import Block, RowVec, Vectoriser, combine, query_mats
from services.matching.engine.vocab import Related

COMPACT_AT = 2000  # delta size that triggers folding it into the compiled block


@dataclass
class Candidates:
    block: Block
    idx: np.ndarray
    score: np.ndarray
    ab: np.ndarray
    ba: np.ndarray
    recip: np.ndarray
    interest: np.ndarray
    social: np.ndarray


@dataclass(frozen=True)
class Snapshot:
    """What a query reads of a :class:`MatchIndex`: each block with its liveness."""

    blocks: tuple[tuple[Block, np.ndarray], ...]
    opted_out: frozenset[str]


class MatchIndex:
    def __init__(self, weights: Weights | None = None, featuriser: Featuriser | None = None):
        self.w = weights or Weights()
        self.featuriser = featuriser or Featuriser()
        self.vec = Vectoriser(self.featuriser, self.w)
        self.rows: dict[str, RowVec] = {}
        self.compiled = Block([], 0)
        self.delta_ids: set[str] = set()
        self._delta: Block | None = None
        self.priors: dict[str, float] = {}
        self.activity: dict[str, float] = {}
        self._related: Related | None = None
        self.opted_out: set[str] = set()

    # ------------------------------------------------------------ building

    def build(self, profiles: Iterable[Profile]) -> None:
        """(Re)build from scratch: learn vocabulary and idf, compile every row."""
        plist = list({p.id: p for p in profiles}.values())
        self.vec = Vectoriser(self.featuriser, self.w)
        raws = [self.vec.raw(p) for p in plist]
        self.vec.fit(raws)
        self.rows = {p.id: self.vec.row(p, r) for p, r in zip(plist, raws, strict=True)}
        self._related = None  # learned on first use (expert finding), not on every build
        self.featuriser.forget()
        self.compact()

    @property
    def related(self) -> Related:
        """Words the ecosystem uses together, learned from its profiles at first use."""
        if self._related is None:
            self._related = Related().fit(self._term_phrases())
        return self._related

    def _term_phrases(self) -> Iterable[list[str]]:
        for row in self.rows.values():
            p = row.profile
            for phrase in (*p.needs, *p.offers, *p.skills, *p.interests, *p.asked, *p.helped):
                yield [k for k, _ in self.featuriser.phrase(phrase) if k[0] == "t"]

    def compact(self) -> None:
        self.compiled = Block(
            list(self.rows.values()), len(self.vec.idf), self.priors, self.activity
        )
        self.delta_ids.clear()
        self._delta = None

    def upsert(self, profile: Profile) -> None:
        """Add or replace one profile; visible to the next query."""
        self.rows[profile.id] = self.vec.row(profile)
        self._hide(profile.id)
        self.delta_ids.add(profile.id)
        self._delta = None
        if len(self.delta_ids) >= COMPACT_AT:
            self.compact()

    def remove(self, pid: str) -> None:
        if self.rows.pop(pid, None) is not None:
            self._hide(pid)
            self.delta_ids.discard(pid)
            self._delta = None

    def set_prior(self, pid: str, value: float) -> None:
        """b's behaviour prior in [0, 1] (½: nothing known); visible to the next query."""
        self.priors[pid] = min(1.0, max(0.0, float(value)))
        for b in (self.compiled, self._delta):
            i = b.pos.get(pid) if b is not None else None
            if b is not None and i is not None:
                b.prior[i] = self.priors[pid]

    def set_activity(self, pid: str, helped: float) -> None:
        """How often pid helped others (answers, replies): a prior of expert finding."""
        self.activity[pid] = max(0.0, float(helped))
        for b in (self.compiled, self._delta):
            i = b.pos.get(pid) if b is not None else None
            if b is not None and i is not None:
                b.activity[i] = self.activity[pid]

    def set_opt_out(self, pid: str, out: bool) -> None:
        """Whoever opted out is never suggested to anyone (they may still ask)."""
        if out:
            self.opted_out.add(pid)
        else:
            self.opted_out.discard(pid)

    def _hide(self, pid: str) -> None:
        i = self.compiled.pos.get(pid)
        if i is not None and self.compiled.alive[i]:
            # Copy on write: a query running in a worker thread over a snapshot keeps
            # the liveness that goes with the delta block it took (see snapshot()).
            alive = self.compiled.alive.copy()
            alive[i] = False
            self.compiled.alive = alive

    def blocks(self) -> list[Block]:
        if self._delta is None:
            rows = [self.rows[i] for i in sorted(self.delta_ids)]
            self._delta = Block(rows, len(self.vec.idf), self.priors, self.activity)
        return [self.compiled, self._delta]

    def snapshot(self) -> Snapshot:
        """The blocks with their liveness and the opted-out people as of now, for a query
        that runs in a worker thread while the event loop goes on changing the index:
        the thread never sees a person hidden in the compiled block but not yet in the
        delta (take it on the event loop)."""
        return Snapshot(tuple((b, b.alive) for b in self.blocks()), frozenset(self.opted_out))

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, pid: str) -> bool:
        return pid in self.rows

    def profile(self, pid: str) -> Profile | None:
        row = self.rows.get(pid)
        return row.profile if row else None

    def nbytes(self) -> int:
        return sum(b.nbytes() for b in self.blocks())

    # ------------------------------------------------------------ querying

    def query(
        self, pid: str, k: int, flt: Filter | None = None, ctx: Asker | None = None
    ) -> list[Scored]:
        """The k best parties for ``pid`` (never itself, nor anyone in ``ctx.exclude``)."""
        me = self.rows.get(pid)
        if me is None:
            return []
        return self._query(me, k, flt or Filter(), ctx or Asker())

    def query_for(
        self, asker: Profile, k: int, flt: Filter | None = None, ctx: Asker | None = None
    ) -> list[Scored]:
        """The k best parties of this index for an asker who is not in it (a person of
        another ecosystem); the index learns nothing from the asker."""
        return self._query(self.vec.probe(asker), k, flt or Filter(), ctx or Asker())

    def _query(self, me: RowVec, k: int, flt: Filter, ctx: Asker) -> list[Scored]:
        q = query_mats(me, len(self.vec.idf))
        found = [
            c for b in self.blocks() if len(b) and (c := self._score_block(b, me, q, flt, ctx))
        ]
        if not found:
            return []
        scores = np.concatenate([c.score for c in found])
        order = _top(scores, k)
        owners = np.repeat(np.arange(len(found)), [len(c.idx) for c in found])
        offsets = np.cumsum([0] + [len(c.idx) for c in found])
        out = []
        for j in order:
            c = found[owners[j]]
            i = j - offsets[owners[j]]
            p = c.block.profiles[c.idx[i]]
            out.append(
                Scored(
                    p.id,
                    p.partner,
                    p.name,
                    *(float(a[i]) for a in (c.score, c.ab, c.ba, c.recip, c.interest, c.social)),
                )
            )
        return out

    def _score_block(
        self, b: Block, me: RowVec, q: dict[str, sp.csr_matrix], flt: Filter, ctx: Asker
    ) -> Candidates | None:
        ab, ba, it = b.against(q)
        soc = np.zeros(len(b), dtype=np.float32)
        for other, s in ctx.social.items():
            i = b.pos.get(other)
            if i is not None:
                soc[i] = s
        rec = combine(ab, ba, self.w)
        keep = ((rec > 0) | (it > 0) | (soc > 0)) & b.alive
        keep &= self._filter_mask(b, me, flt)
        for other in (*ctx.exclude, *self.opted_out, me.profile.id):
            i = b.pos.get(other)
            if i is not None:
                keep[i] = False
        idx = np.flatnonzero(keep)
        if not len(idx):
            return None
        rec_i = rec[idx]
        fit = self.fit(me, b.regions[idx], b.industries[idx])
        score = (
            self.w.reciprocal * rec_i * fit + self.w.interest * it[idx] + self.w.social * soc[idx]
        )
        score = score * self._penalty(b.partner[idx], ctx) * (0.5 + b.prior[idx])
        ok = score > max(flt.min_score, 0.0)
        idx = idx[ok]
        return Candidates(b, idx, score[ok], ab[idx], ba[idx], rec[idx], it[idx], soc[idx])

    def _filter_mask(self, b: Block, me: RowVec, flt: Filter) -> np.ndarray:
        keep = np.ones(len(b), dtype=bool)
        if not flt.include_same_partner:
            keep &= b.partner != me.partner
        if flt.partners:
            codes = [self.vec.partners[p] for p in flt.partners if p in self.vec.partners]
            keep &= np.isin(b.partner, codes)
        if flt.regions:
            keep &= (b.regions & self.vec.mask_of("regions", flt.regions)) != 0
        if flt.industries:
            keep &= (b.industries & self.vec.mask_of("industries", flt.industries)) != 0
        return keep

    def fit(self, me: RowVec, regions: np.ndarray, industries: np.ndarray) -> np.ndarray:
        return (
            self.w.fit_base
            + self.w.fit_region * _overlap(me.regions, regions)
            + self.w.fit_industry * _overlap(me.industries, industries)
        )

    def _penalty(self, partners: np.ndarray, ctx: Asker) -> np.ndarray | float:
        if not ctx.penalties:
            return 1.0
        factors = np.ones(len(partners), dtype=np.float64)
        for name, factor in ctx.penalties.items():
            code = self.vec.partners.get(name)
            if code is not None:
                factors[partners == code] *= factor
        return factors

    def pair(self, a: str, b: str, ctx: Asker | None = None) -> Scored | None:
        """The score of one pair (e.g. an introduction proposed by hand)."""
        ra = self.rows.get(a)
        return None if ra is None else self._pair(ra, b, ctx or Asker())

    def pair_for(self, asker: Profile, b: str) -> Scored | None:
        """The score of ``b`` for an asker who is not in this index (another ecosystem)."""
        return self._pair(self.vec.probe(asker), b, Asker())

    def _pair(self, ra: RowVec, b: str, ctx: Asker) -> Scored | None:
        rb = self.rows.get(b)
        if rb is None:
            return None
        ab, ba = _dot(ra.need, rb.offer), _dot(rb.need, ra.offer)
        it, soc = _dot(ra.interest, rb.interest), ctx.social.get(b, 0.0)
        rec = float(combine(np.array([ab]), np.array([ba]), self.w)[0])
        fit = self.fit(ra, np.array([rb.regions]), np.array([rb.industries]))[0]
        score = self.w.reciprocal * rec * fit + self.w.interest * it + self.w.social * soc
        score *= ctx.penalties.get(rb.profile.partner, 1.0) * (0.5 + self.priors.get(b, 0.5))
        p = rb.profile
        return Scored(p.id, p.partner, p.name, float(score), ab, ba, rec, it, soc)


def _dot(x: dict[int, float], y: dict[int, float]) -> float:
    if len(x) > len(y):
        x, y = y, x
    return float(sum(v * y[c] for c, v in x.items() if c in y))


def _overlap(mine: int, theirs: np.ndarray) -> np.ndarray:
    """1 where both have a value in common, 0 where neither overlaps, 0.5 where unknown."""
    if mine == 0:
        return np.full(len(theirs), 0.5)
    out: np.ndarray = ((theirs & mine) != 0).astype(np.float64)
    out[theirs == 0] = 0.5
    return out


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    if len(scores) > k:
        part = np.argpartition(-scores, k)[:k]
    else:
        part = np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]
