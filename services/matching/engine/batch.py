"""Top-k for everyone at once (sparse matrix products in chunks), and the candidate graph.

The same scores as :meth:`MatchIndex.query`, computed for a chunk of askers at a
time: ``needs[chunk] @ offersᵀ`` and ``offers[chunk] @ needsᵀ`` give both
directions for every pair that shares a feature, their harmonic mean lives on the
intersection of the two supports, the one-sided part on their union, and a
vectorised sort picks each row's top k.
Askers with exclusions, penalties or social ties are re-scored one by one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Asker, Filter, Weights

CHUNK = 2000
WORKERS = min(4, os.cpu_count() or 1)  # numpy and scipy release the GIL in their kernels
BINS = 256  # histogram bins over the score range, to find each row's top-k floor
SCORE_MAX = 1.5  # every score lies in [0, 1.5]


@dataclass
class TopK:
    ids: list[str]
    idx: np.ndarray  # (n, k) row numbers into ids, -1 where fewer than k
    score: np.ndarray  # (n, k)

    def of(self, pid: str) -> list[tuple[str, float]]:
        if not hasattr(self, "_pos"):
            self._pos = {x: i for i, x in enumerate(self.ids)}
        i = self._pos[pid]
        return [
            (self.ids[j], float(s))
            for j, s in zip(self.idx[i], self.score[i], strict=True)
            if j >= 0
        ]


def _pair_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = ((a & b) != 0).astype(np.float32)
    out[(a == 0) | (b == 0)] = 0.5
    return out


def _chunk_scores(ix: MatchIndex, start: int, stop: int) -> sp.csr_matrix:
    b, w = ix.compiled, ix.w
    ab = b.mats["need"][start:stop] @ b.trans["offer"]
    ba = b.mats["offer"][start:stop] @ b.trans["need"]
    rec = _reciprocal(ab, ba, w).tocoo()
    rows = rec.row + start
    fit = (
        w.fit_base
        + w.fit_region * _pair_overlap(b.regions[rows], b.regions[rec.col])
        + w.fit_industry * _pair_overlap(b.industries[rows], b.industries[rec.col])
    )
    rec.data *= (w.reciprocal * fit).astype(np.float32)
    out = (
        rec.tocsr() + w.interest * (b.mats["interest"][start:stop] @ b.trans["interest"])
    ).tocsr()
    if ix.priors:  # × (½ + prior of the suggested person), column by column
        out.data *= (0.5 + b.prior)[out.indices].astype(out.data.dtype)
    return out


def _reciprocal(ab: sp.csr_matrix, ba: sp.csr_matrix, w: Weights) -> sp.csr_matrix:
    """``combine`` on sparse inputs: one-sided part on the union, harmonic mean on the intersection.

    The union is touched by one addition; the harmonic mean only where both
    directions are non-zero (a small share of pairs), read off ``ab·ba``.
    """
    one = ab * ((1.0 - w.mutual) * w.direct) + ba * ((1.0 - w.mutual) * (1.0 - w.direct))
    both = ab.multiply(ba).tocoo()
    if not both.nnz:
        return one.tocsr()
    r, c = both.row, both.col
    x = np.asarray(ab[r, c]).ravel() + np.asarray(ba[r, c]).ravel()
    hm = sp.csr_matrix((w.mutual * 2.0 * both.data / x, (r, c)), shape=ab.shape)
    return (one + hm).tocsr()


def _row_top_bins(local: np.ndarray, data: np.ndarray, indptr: np.ndarray, k: int) -> np.ndarray:
    """Which entries lie in their row's highest score bins that together hold at least k.

    One histogram pass (bins over the score range) instead of a sort: every row's k
    best entries are kept, and rows with fewer than k valid entries
    keep them all. Invalid entries (≤ 0) fall in bin 0, which never counts.
    """
    rows = len(indptr) - 1
    q = np.minimum(data * (BINS / SCORE_MAX), BINS - 1).astype(np.int32) + 1
    q[data <= 0] = 0
    counts = np.bincount(local * (BINS + 1) + q, minlength=rows * (BINS + 1))
    counts = counts.reshape(rows, BINS + 1)
    counts[:, 0] = 0
    at_or_above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    top_bin = np.maximum((at_or_above >= k).sum(axis=1) - 1, 1)
    chosen: np.ndarray = q >= top_bin[local]
    return chosen


def _select(
    ix: MatchIndex,
    t: sp.csr_matrix,
    start: int,
    k: int,
    min_score: float,
    out_idx: np.ndarray,
    out_score: np.ndarray,
    hidden: np.ndarray,
) -> None:
    """Each row's k best valid entries: drop what cannot make it, then one sort by (row, -score)."""
    b = ix.compiled
    local = np.repeat(np.arange(t.shape[0], dtype=np.int32), np.diff(t.indptr))
    cols = t.indices
    data = t.data.astype(np.float32)
    data[(b.partner[local + start] == b.partner[cols]) | (data <= min_score) | hidden[cols]] = -1
    keep = _row_top_bins(local, data, t.indptr, k)
    local, cols, data = local[keep], cols[keep], data[keep]
    # Scores lie in [0, 1.5]: row r's keys fall in [4r, 4r + 1.5], best score first.
    order = np.argsort(local * 4.0 + (1.5 - data))
    local, cols, data = local[order], cols[order], data[order]
    starts = np.searchsorted(local, np.arange(t.shape[0]))
    rank = np.arange(len(local)) - starts[local]
    top = rank < k
    rows = local[top] + start
    out_idx[rows, rank[top]] = cols[top]
    out_score[rows, rank[top]] = data[top]


def top_k_all(
    ix: MatchIndex,
    k: int,
    min_score: float = 0.0,
    asker_of: Callable[[str], Asker | None] | None = None,
) -> TopK:
    """The k best parties of every indexed profile (different partner, score > min_score)."""
    ix.compact()
    b = ix.compiled
    n = len(b)
    out_idx = np.full((n, k), -1, dtype=np.int32)
    out_score = np.zeros((n, k), dtype=np.float32)
    hidden = ~b.alive  # removed, or opted out of being suggested
    hidden[[b.pos[p] for p in ix.opted_out if p in b.pos]] = True

    def work(start: int) -> None:  # chunks write disjoint rows of the outputs
        chunk = _chunk_scores(ix, start, min(n, start + CHUNK))
        _select(ix, chunk, start, k, min_score, out_idx, out_score, hidden)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(work, range(0, n, CHUNK)))
    if asker_of is not None:
        _rescore_askers(ix, k, min_score, asker_of, out_idx, out_score)
    return TopK(list(b.ids), out_idx, out_score)


def _rescore_askers(
    ix: MatchIndex,
    k: int,
    min_score: float,
    asker_of: Callable[[str], Asker | None],
    out_idx: np.ndarray,
    out_score: np.ndarray,
) -> None:
    b = ix.compiled
    for i, pid in enumerate(b.ids):
        ctx = asker_of(pid)
        if ctx is None:
            continue
        out_idx[i], out_score[i] = -1, 0.0
        for r, s in enumerate(ix.query(pid, k, Filter(min_score=min_score), ctx)):
            out_idx[i, r], out_score[i, r] = b.pos[s.id], s.score


def candidate_graph(top: TopK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges (u < v) of everyone's top-k, each with its best score."""
    n, k = top.idx.shape
    u = np.repeat(np.arange(n, dtype=np.int64), k)
    v = top.idx.ravel().astype(np.int64)
    s = top.score.ravel()
    ok = v >= 0
    u, v, s = u[ok], v[ok], s[ok]
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    key = lo * n + hi
    order = np.lexsort((-s, key))
    key, s = key[order], s[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, s = key[first], s[first]
    return key // n, key % n, s.astype(np.float64)


__all__ = ["TopK", "candidate_graph", "top_k_all"]
