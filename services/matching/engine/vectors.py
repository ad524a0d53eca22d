"""Profiles as sparse vectors, and blocks of them with their inverted indexes.

Every profile becomes three L2-normalised tf-idf rows over one feature vocabulary:
``need`` (needs, and threads the person started), ``offer`` (offers, skills at half
weight, and the threads the person helped in) and ``interest`` (interests + skills
at half weight). ``need_a · offer_b`` is then the cosine of what
a looks for against what b provides. A :class:`Block` holds rows together with
their transposes (feature → people posting lists), so scoring one profile against a
block only touches the people who share a feature with it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from services.matching.engine.model import Profile, Weights
from services.matching.engine.text import Featuriser

FIELDS = ("need", "offer", "interest")
Sparse = dict[int, float]


@dataclass
class RowVec:
    profile: Profile
    partner: int
    regions: int
    industries: int
    need: Sparse
    offer: Sparse
    interest: Sparse


def sublinear(weight: float) -> float:
    """A word said ten times in long prose is not ten times the evidence (1 + log tf)."""
    return weight if weight <= 1.0 else 1.0 + math.log(weight)


def bit(i: int) -> int:
    """Bit of the i-th region/industry in a 63-bit mask (wraps on huge vocabularies)."""
    return 1 << (i % 63)


class Vectoriser:
    """Feature vocabulary, idf and the codes of partners, regions and industries."""

    def __init__(self, featuriser: Featuriser, weights: Weights) -> None:
        self.f = featuriser
        self.w = weights
        self.vocab: dict[str, int] = {}
        self.idf: list[float] = []
        self.dropped: frozenset[str] = frozenset()
        self.partners: dict[str, int] = {}
        self.regions: dict[str, int] = {}
        self.industries: dict[str, int] = {}
        self.n_docs = 0

    def raw(self, p: Profile) -> dict[str, dict[str, float]]:
        """Feature → raw weight per field (before idf), leftover words down-weighted."""
        out: dict[str, dict[str, float]] = {k: defaultdict(float) for k in FIELDS}
        for fld, phrases, weight in (
            ("need", p.needs, 1.0),
            ("need", p.asked, 1.0),
            ("offer", p.offers, 1.0),
            ("offer", p.helped, 1.0),
            ("offer", p.skills, self.w.skills),
            ("interest", p.interests, 1.0),
            ("interest", p.skills, self.w.skills),
        ):
            for phrase in phrases:
                for key, _words in self.f.phrase(phrase):
                    out[fld][key] += weight * (1.0 if key[0] == "c" else self.w.term)
        return {fld: {k: sublinear(v) for k, v in feats.items()} for fld, feats in out.items()}

    def fit(self, raws: list[dict[str, dict[str, float]]]) -> None:
        """Learn the vocabulary and idf from a whole population (at build)."""
        df: dict[str, int] = defaultdict(int)
        for r in raws:
            for key in set().union(*(r[k].keys() for k in FIELDS)):
                df[key] += 1
        n = len(raws)
        limit = self.w.max_df * n if n >= self.w.max_df_min_n else math.inf
        self.dropped = frozenset(k for k, c in df.items() if k[0] == "t" and c > limit)
        self.vocab = {}
        self.idf = []
        for key, count in sorted(df.items()):
            if key not in self.dropped:
                self.vocab[key] = len(self.idf)
                self.idf.append(math.log((1 + n) / (1 + count)) + 1.0)
        self.n_docs = n

    def vector(self, raw: dict[str, float], grow: bool) -> Sparse:
        out: Sparse = {}
        for key, weight in raw.items():
            col = self.vocab.get(key)
            if col is None:
                if not grow or key in self.dropped:
                    continue
                col = self.vocab[key] = len(self.idf)
                self.idf.append(math.log(1 + self.n_docs) + 1.0)  # unseen: rarest
            out[col] = weight * self.idf[col]
        norm = math.sqrt(sum(v * v for v in out.values()))
        return {c: v / norm for c, v in out.items()} if norm else {}

    def row(self, p: Profile, raw: dict[str, dict[str, float]] | None = None) -> RowVec:
        raw = raw if raw is not None else self.raw(p)
        return RowVec(
            profile=p,
            partner=self.partner(p.partner),
            regions=self._mask(self.regions, {self.f.region(r) for r in p.regions}),
            industries=self._mask(self.industries, {self.f.industry(i) for i in p.industries}),
            need=self.vector(raw["need"], grow=True),
            offer=self.vector(raw["offer"], grow=True),
            interest=self.vector(raw["interest"], grow=True),
        )

    def probe(self, p: Profile) -> RowVec:
        """``p``'s row in this vocabulary without learning anything from it: an asker who
        is not part of the population (a person of an allied ecosystem)."""
        raw = self.raw(p)
        return RowVec(
            profile=p,
            partner=self.partners.get(p.partner, -1),
            regions=self._mask(self.regions, {self.f.region(r) for r in p.regions}, False),
            industries=self._mask(
                self.industries, {self.f.industry(i) for i in p.industries}, False
            ),
            need=self.vector(raw["need"], grow=False),
            offer=self.vector(raw["offer"], grow=False),
            interest=self.vector(raw["interest"], grow=False),
        )

    def partner(self, name: str) -> int:
        return self.partners.setdefault(name, len(self.partners))

    def mask_of(self, kind: str, names: frozenset[str]) -> int:
        """Mask of filter values (unknown names match nobody)."""
        table = self.regions if kind == "regions" else self.industries
        canon = self.f.region if kind == "regions" else self.f.industry
        return self._mask(table, {canon(n) for n in names}, grow=False)

    @staticmethod
    def _mask(table: dict[str, int], names: set[str], grow: bool = True) -> int:
        m = 0
        for name in names:
            if name not in table:
                if not grow:
                    continue
                table[name] = len(table)
            m |= bit(table[name])
        return m


def _csr(rows: list[Sparse], width: int) -> sp.csr_matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.fromiter((c for r in rows for c in r), dtype=np.int32, count=int(indptr[-1]))
    data = np.fromiter((v for r in rows for v in r.values()), dtype=np.float32, count=len(indices))
    m = sp.csr_matrix((data, indices, indptr), shape=(len(rows), width))
    m.sort_indices()
    return m


class Block:
    """Rows of many profiles as matrices, plus feature → people transposes."""

    def __init__(
        self,
        rows: list[RowVec],
        width: int,
        priors: dict[str, float] | None = None,
        activity: dict[str, float] | None = None,
    ) -> None:
        self.width = width
        self.profiles = [r.profile for r in rows]
        self.ids = [r.profile.id for r in rows]
        self.pos = {pid: i for i, pid in enumerate(self.ids)}
        self.partner = np.fromiter((r.partner for r in rows), dtype=np.int32, count=len(rows))
        self.regions = np.fromiter((r.regions for r in rows), dtype=np.int64, count=len(rows))
        self.industries = np.fromiter((r.industries for r in rows), dtype=np.int64, count=len(rows))
        self.alive = np.ones(len(rows), dtype=bool)
        priors = priors or {}
        # Behaviour prior per person (0.5: nothing known), see engine.priors.
        self.prior = np.fromiter(
            (priors.get(pid, 0.5) for pid in self.ids), dtype=np.float32, count=len(rows)
        )
        activity = activity or {}  # times each person helped others (answers, replies)
        self.activity = np.fromiter(
            (activity.get(pid, 0.0) for pid in self.ids), dtype=np.float32, count=len(rows)
        )
        self.mats = {f: _csr([getattr(r, f) for r in rows], width) for f in FIELDS}
        self.trans = {f: m.T.tocsr() for f, m in self.mats.items()}

    def __len__(self) -> int:
        return len(self.ids)

    def nbytes(self) -> int:
        arrays = (
            self.partner,
            self.regions,
            self.industries,
            self.alive,
            self.prior,
            self.activity,
        )
        total = sum(a.nbytes for a in arrays)
        for m in (*self.mats.values(), *self.trans.values()):
            total += m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
        return total

    def against(self, q: dict[str, sp.csr_matrix]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cosines of one query row against every row: a→b, b→a and interest."""
        w = self.width
        ab = (q["need"][:, :w] @ self.trans["offer"]).toarray().ravel()
        ba = (q["offer"][:, :w] @ self.trans["need"]).toarray().ravel()
        it = (q["interest"][:, :w] @ self.trans["interest"]).toarray().ravel()
        return ab, ba, it


def sparse_row(vec: Sparse, width: int) -> sp.csr_matrix:
    return _csr([vec], width)


def query_mats(row: RowVec, width: int) -> dict[str, sp.csr_matrix]:
    return {f: _csr([getattr(row, f)], width) for f in FIELDS}


def combine(ab: np.ndarray, ba: np.ndarray, w: Weights) -> np.ndarray:
    """Both directions weighted: mutual interest scores highest, one-sided is not zero."""
    one_sided = w.direct * ab + (1.0 - w.direct) * ba
    return (w.mutual * harmonic(ab, ba) + (1.0 - w.mutual) * one_sided).astype(ab.dtype)


def harmonic(ab: np.ndarray, ba: np.ndarray) -> np.ndarray:
    s = ab + ba
    out = np.zeros_like(ab)
    both = (ab > 0) & (ba > 0)
    out[both] = 2 * ab[both] * ba[both] / s[both]
    return out
