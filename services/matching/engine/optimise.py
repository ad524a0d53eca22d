"""Optimal introductions: maximum-weight b-matching with a fairness floor.

Given candidate pairs (u, v) with reciprocal scores w, pick a set of pairs that
maximises the total score while nobody is in more than ``capacity[v]`` of them::

    max  Σ_e w_e·x_e + λ·Σ_v y_v
    s.t. Σ_{e ∋ v} x_e ≤ cap_v          (per-person capacity)
         y_v ≤ Σ_{e ∋ v} x_e,  y_v ≤ 1  (y_v = 1 only if v got an introduction)
         x_e ∈ {0, 1}

The y terms are the fairness floor: with λ larger than any single pair's score,
covering one more person who has a viable match outweighs any swap of one pair, so
nobody who can be covered is left without an introduction to favour a high
scorer. Solved exactly (to ``rel_gap``) by HiGHS through ``scipy.optimize.milp``;
the LP relaxation (``linprog``) gives a proven upper bound that every answer
reports its distance to. Greedy is the baseline (a ½-approximation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp


@dataclass
class Plan:
    chosen: np.ndarray  # indices of the chosen edges
    weight: float  # Σ w over chosen edges
    objective: float  # weight + λ·covered (what was maximised)
    upper_bound: float  # proven bound on the objective
    gap: float  # (upper_bound - objective) / upper_bound
    viable: int  # people with at least one candidate and capacity
    covered: int  # of those, people with at least one chosen edge
    solver: str
    seconds: float


def _caps(n: int, capacity: int | np.ndarray) -> np.ndarray:
    return np.full(n, capacity, dtype=np.int64) if np.isscalar(capacity) else np.asarray(capacity)


def _problem(  # type: ignore[no-untyped-def]
    n: int,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    cap: np.ndarray,
    fairness: bool,
    cover: np.ndarray | None = None,
):
    m = len(w)
    inc = sp.csr_matrix(
        (np.ones(2 * m), (np.concatenate([u, v]), np.concatenate([np.arange(m)] * 2))),
        shape=(n, m),
    )
    viable_mask = (np.asarray(inc.sum(axis=1)).ravel() > 0) & (cap > 0)
    if cover is not None:  # the floor holds for these people only (e.g. askers, not experts)
        viable_mask &= np.asarray(cover, bool)
    viable = np.flatnonzero(viable_mask)
    lam = 1.0 + 2.0 * float(w.max()) if (fairness and m) else 0.0
    if not fairness:
        return -w, [LinearConstraint(inc, -np.inf, cap)], Bounds(0, 1), m, viable, lam
    k = len(viable)
    c = np.concatenate([-w, np.full(k, -lam)])
    cap_rows = sp.hstack([inc, sp.csr_matrix((n, k))]).tocsr()
    pick = sp.csr_matrix((np.ones(k), (np.arange(k), np.arange(k))), shape=(k, k))
    cover_rows = sp.hstack([-inc[viable], pick]).tocsr()
    cons = [LinearConstraint(cap_rows, -np.inf, cap), LinearConstraint(cover_rows, -np.inf, 0)]
    return c, cons, Bounds(0, 1), m, viable, lam


def lp_bound(
    n: int,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    capacity: int | np.ndarray,
    fairness: bool = True,
    cover: np.ndarray | None = None,
) -> float:
    """The LP relaxation's optimum: no integral plan can score more."""
    if not len(w):
        return 0.0
    caps = _caps(n, capacity)
    c, cons, _bounds, _m, _viable, _lam = _problem(n, u, v, w, caps, fairness, cover)
    a = sp.vstack([con.A for con in cons]).tocsr()
    ub = np.concatenate([np.broadcast_to(con.ub, con.A.shape[0]) for con in cons])
    res = linprog(c, A_ub=a, b_ub=ub, bounds=(0, 1), method="highs")
    if res.status != 0:
        raise RuntimeError(f"LP relaxation failed: {res.message}")
    return float(-res.fun)


def optimise(
    n: int,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    capacity: int | np.ndarray,
    fairness: bool = True,
    rel_gap: float = 0.002,
    time_limit: float = 60.0,
    cover: np.ndarray | None = None,
) -> Plan:
    """The best set of pairs (to within ``rel_gap`` of optimal, or greedy on solver failure)."""
    started = time.perf_counter()
    u, v, w = np.asarray(u, np.int64), np.asarray(v, np.int64), np.asarray(w, np.float64)
    cap = _caps(n, capacity)
    if not len(w):
        return Plan(np.zeros(0, np.int64), 0.0, 0.0, 0.0, 0.0, 0, 0, "empty", 0.0)
    c, cons, bounds, m, viable, lam = _problem(n, u, v, w, cap, fairness, cover)
    integrality = np.zeros(len(c))
    integrality[:m] = 1
    res = milp(
        c,
        integrality=integrality,
        bounds=bounds,
        constraints=cons,
        options={"mip_rel_gap": rel_gap, "time_limit": time_limit},
    )
    bound = lp_bound(n, u, v, w, cap, fairness, cover)
    if res.x is None:
        chosen, solver = greedy(n, u, v, w, cap), "greedy (solver gave no solution)"
    else:
        chosen, solver = np.flatnonzero(res.x[:m] > 0.5), "highs-milp"
        if res.mip_dual_bound is not None and np.isfinite(res.mip_dual_bound):
            bound = min(bound, float(-res.mip_dual_bound))
    return _plan(n, u, v, w, chosen, viable, lam, bound, solver, started)


def _plan(n, u, v, w, chosen, viable, lam, bound, solver, started) -> Plan:  # type: ignore[no-untyped-def]
    deg = np.bincount(np.concatenate([u[chosen], v[chosen]]), minlength=n)
    covered = int((deg[viable] > 0).sum())
    weight = float(w[chosen].sum())
    objective = weight + lam * covered
    bound = max(bound, objective)
    gap = (bound - objective) / bound if bound > 0 else 0.0
    return Plan(
        chosen,
        weight,
        objective,
        bound,
        gap,
        len(viable),
        covered,
        solver,
        time.perf_counter() - started,
    )


def greedy(
    n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray, capacity: int | np.ndarray
) -> np.ndarray:
    """Heaviest pair first while both have capacity left: the ½-approximate baseline."""
    left = _caps(n, capacity).copy()
    chosen = []
    for e in np.argsort(-np.asarray(w), kind="stable"):
        a, b = int(u[e]), int(v[e])
        if left[a] > 0 and left[b] > 0:
            left[a] -= 1
            left[b] -= 1
            chosen.append(e)
    return np.asarray(chosen, dtype=np.int64)


def greedy_plan(
    n: int,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    capacity: int | np.ndarray,
    fairness: bool = True,
    cover: np.ndarray | None = None,
) -> Plan:
    started = time.perf_counter()
    u, v, w = np.asarray(u, np.int64), np.asarray(v, np.int64), np.asarray(w, np.float64)
    cap = _caps(n, capacity)
    _c, _cons, _b, _m, viable, lam = _problem(n, u, v, w, cap, fairness, cover)
    return _plan(n, u, v, w, greedy(n, u, v, w, cap), viable, lam, 0.0, "greedy", started)


def exact_bruteforce(n: int, u, v, w, capacity, fairness: bool = True) -> float:  # type: ignore[no-untyped-def]
    """Optimum by enumerating every feasible subset (tiny instances only: tests)."""
    cap = _caps(n, capacity)
    m = len(w)
    if m > 22:
        raise ValueError("too many edges to enumerate")
    viable = [i for i in range(n) if cap[i] > 0 and any(i in (u[e], v[e]) for e in range(m))]
    lam = 1.0 + 2.0 * max(w) if (fairness and m) else 0.0
    best = 0.0
    deg = [0] * n

    def walk(e: int, total: float) -> None:
        nonlocal best
        if e == m:
            best = max(best, total + lam * sum(1 for i in viable if deg[i] > 0))
            return
        walk(e + 1, total)
        a, b = int(u[e]), int(v[e])
        if deg[a] < cap[a] and deg[b] < cap[b]:
            deg[a] += 1
            deg[b] += 1
            walk(e + 1, total + float(w[e]))
            deg[a] -= 1
            deg[b] -= 1

    walk(0, 0.0)
    return best
