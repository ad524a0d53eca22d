"""Ranking metrics over score matrices, paired bootstrap, and realised introduction precision."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from services.matching.engine.optimise import greedy, optimise

K = 10
RESAMPLES = 1000


def ranking(scores: np.ndarray, seed: int) -> np.ndarray:
    """Candidate order, best first; ties broken at random (a fixed seed per query)."""
    jitter = np.random.default_rng(seed).random(len(scores))
    return np.lexsort((jitter, -scores))


def per_query(order: list[str], truth: frozenset[str]) -> tuple[float, float, float]:
    """NDCG@10, recall@10 and reciprocal rank of one query (truth outside the pool: a miss)."""
    dcg = sum(1 / math.log2(r + 2) for r, c in enumerate(order[:K]) if c in truth)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(len(truth), K)))
    recall = sum(1 for c in order[:K] if c in truth) / len(truth)
    rr = next((1 / (r + 1) for r, c in enumerate(order) if c in truth), 0.0)
    return dcg / ideal, recall, rr


METRICS = ("ndcg@10", "recall@10", "mrr")


def summary(rows: np.ndarray) -> dict[str, float]:
    return {m: round(float(rows[:, i].mean()), 4) for i, m in enumerate(METRICS)}


def bootstrap(ours: np.ndarray, other: np.ndarray, seed: int = 7) -> dict[str, Any]:
    """Paired bootstrap of the mean difference (ours − other): 95% interval per metric."""
    rng = np.random.default_rng(seed)
    n = len(ours)
    idx = rng.integers(0, n, size=(RESAMPLES, n))
    diff = ours - other
    out: dict[str, Any] = {}
    for i, m in enumerate(METRICS):
        means = diff[idx, i].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        out[m] = {
            "difference": round(float(diff[:, i].mean()), 4),
            "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "relative": round(float(diff[:, i].mean() / max(other[:, i].mean(), 1e-9)), 3),
        }
    return out


def introductions(
    weights: np.ndarray,
    truth: np.ndarray,
    week_of: np.ndarray,
    cap: int = 3,
    top: int = K,
    ranking: np.ndarray | None = None,
) -> dict[str, Any]:
    """Asker→expert introductions for one window; each question gets at most one.

    ``weights`` is (questions × candidates); an expert is a separate node per week with
    ``cap`` introductions; the candidate pool is each question's ``top`` best by ``ranking``
    (default: by ``weights``), so chances that tie never pick the pool at random. Returns the
    successes and sizes of the optimiser, greedy, everyone's top-1 and the pool.
    """
    nq, nc = weights.shape
    weeks = int(week_of.max()) + 1 if nq else 1
    qs, cs = [], []
    order = weights if ranking is None else ranking
    for q in range(nq):
        ranked = np.lexsort((-weights[q], -order[q]))[:top]
        best = [c for c in ranked if weights[q, c] > 0]
        qs += [q] * len(best)
        cs += best
    qi, ci = np.asarray(qs, np.int64), np.asarray(cs, np.int64)
    w = weights[qi, ci].astype(np.float64) if len(qi) else np.zeros(0)
    hit = truth[qi, ci] if len(qi) else np.zeros(0, bool)
    n = nq + nc * weeks
    u, v = qi, nq + week_of[qi] * nc + ci
    caps = np.concatenate([np.ones(nq, np.int64), np.full(nc * weeks, cap, np.int64)])
    cover = np.zeros(n, bool)
    cover[:nq] = True  # the fairness floor: every question with a viable expert gets one
    out: dict[str, Any] = {"pool": [int(hit.sum()), len(hit)]}
    if not len(w):
        none = [0, 0, 0.0]
        return {**out, "optimiser": none, "greedy": none, "top1": none, "covered": [0, 0]}
    plan = optimise(n, u, v, w, caps, fairness=True, cover=cover)
    out["optimiser"] = [int(hit[plan.chosen].sum()), len(plan.chosen), float(w[plan.chosen].sum())]
    out["covered"] = [plan.covered, plan.viable]
    g = greedy(n, u, v, w, caps)
    out["greedy"] = [int(hit[g].sum()), len(g), float(w[g].sum())]
    first = np.ones(len(qi), bool)
    first[1:] = qi[1:] != qi[:-1]
    out["top1"] = [int(hit[first].sum()), int(first.sum()), float(w[first].sum())]
    return out


def precision(parts: list[dict[str, Any]], base_rate: float) -> dict[str, Any]:
    """Realised precision of each policy; ``pool`` is the rate among the pairs offered."""
    out: dict[str, Any] = {}
    for key in ("optimiser", "greedy", "top1", "pool"):
        hits = sum(p[key][0] for p in parts)
        total = sum(p[key][1] for p in parts)
        out[key] = {"precision": round(hits / max(total, 1), 4), "successes": hits, "made": total}
        if key != "pool":  # what the chances promised (for calibrated scores: expected successes)
            out[key]["expected"] = round(sum(p[key][2] for p in parts), 2)
    out["covered"] = f"{sum(p['covered'][0] for p in parts)}/{sum(p['covered'][1] for p in parts)}"
    out["optimiser_vs_base_rate"] = round(out["optimiser"]["precision"] / max(base_rate, 1e-9), 2)
    return out
