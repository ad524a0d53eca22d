"""Optimal introductions against an exact solver, capacity, fairness floor and bounds."""

import numpy as np
import pytest

from services.matching.engine.optimise import exact_bruteforce, greedy_plan, lp_bound, optimise


def random_instance(
    rng: np.random.Generator, n: int = 7, max_edges: int = 14
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pairs: set[tuple[int, int]] = set()
    m = int(rng.integers(3, max_edges + 1))
    while len(pairs) < m:
        a, b = rng.integers(0, n, 2)
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    u = np.array([p[0] for p in sorted(pairs)])
    v = np.array([p[1] for p in sorted(pairs)])
    return n, u, v, rng.random(len(u)), rng.integers(0, 4, n)


def degrees(n: int, u: np.ndarray, v: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    return np.bincount(np.concatenate([u[chosen], v[chosen]]), minlength=n)


class TestAgainstExact:
    @pytest.mark.parametrize("seed", range(25))
    @pytest.mark.parametrize("fairness", [True, False])
    def test_matches_exhaustive_search(self, seed: int, fairness: bool) -> None:
        n, u, v, w, cap = random_instance(np.random.default_rng(seed))
        plan = optimise(n, u, v, w, cap, fairness, rel_gap=0.0)
        assert plan.objective == pytest.approx(exact_bruteforce(n, u, v, w, cap, fairness))
        assert np.all(degrees(n, u, v, plan.chosen) <= cap)

    def test_odd_cycle_is_integral_where_the_lp_is_not(self) -> None:
        # A triangle with capacity 1: the LP takes ½ of every edge (1.5), the best matching 1.
        u, v, w = np.array([0, 0, 1]), np.array([1, 2, 2]), np.ones(3)
        plan = optimise(3, u, v, w, 1, fairness=False, rel_gap=0.0)
        assert plan.weight == pytest.approx(1.0)
        assert lp_bound(3, u, v, w, 1, fairness=False) == pytest.approx(1.5)
        assert plan.upper_bound >= plan.objective


class TestFairnessFloor:
    def test_nobody_with_a_viable_match_is_left_out(self) -> None:
        # 0 (capacity 2) is the favourite of 1 and 2, who are the only match of 3 and 4.
        u = np.array([0, 0, 1, 2])
        v = np.array([1, 2, 3, 4])
        w = np.array([0.9, 0.8, 0.1, 0.1])
        cap = np.array([2, 1, 1, 1, 1])
        unfair = optimise(5, u, v, w, cap, fairness=False, rel_gap=0.0)
        fair = optimise(5, u, v, w, cap, fairness=True, rel_gap=0.0)
        assert sorted(unfair.chosen.tolist()) == [0, 1] and unfair.covered == 3
        assert sorted(fair.chosen.tolist()) == [0, 3] and fair.covered == 4  # 0-1 and 2-4

    def test_zero_capacity_people_are_not_viable(self) -> None:
        plan = optimise(
            3, np.array([0, 1]), np.array([1, 2]), np.array([0.5, 0.4]), np.array([1, 0, 1])
        )
        assert plan.chosen.size == 0 and plan.viable == 2


class TestBaselines:
    def test_greedy_never_beats_the_optimum(self) -> None:
        rng = np.random.default_rng(9)
        for _ in range(10):
            n, u, v, w, cap = random_instance(rng, n=12, max_edges=40)
            best = optimise(n, u, v, w, cap, fairness=False, rel_gap=0.0)
            assert greedy_plan(n, u, v, w, cap, fairness=False).weight <= best.weight + 1e-9

    def test_gap_is_reported_against_a_proven_bound(self) -> None:
        rng = np.random.default_rng(1)
        n = 300
        u = rng.integers(0, n, 3000)
        v = rng.integers(0, n, 3000)
        keep = u != v
        u, v = np.minimum(u, v)[keep], np.maximum(u, v)[keep]
        pairs = np.unique(np.stack([u, v], 1), axis=0)
        u, v = pairs[:, 0], pairs[:, 1]
        w = rng.random(len(u))
        plan = optimise(n, u, v, w, 3, fairness=True, rel_gap=0.001)
        assert plan.solver == "highs-milp"
        assert plan.upper_bound <= lp_bound(n, u, v, w, 3, True) + 1e-6
        assert 0 <= plan.gap <= 0.01
        assert np.all(degrees(n, u, v, plan.chosen) <= 3)

    def test_empty_graph(self) -> None:
        plan = optimise(4, np.array([], int), np.array([], int), np.array([]), 3)
        assert plan.chosen.size == 0 and plan.objective == 0
