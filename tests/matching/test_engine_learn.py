"""Learning from outcomes: a prior for new ecosystems, data that move it, monotone calibration."""

import numpy as np
import pytest

from services.matching.engine import learn
from services.matching.engine.calibrate import PRIOR, Calibration
from services.matching.engine.optimise import greedy, optimise
from services.matching.engine.priors import WEEK, Activity, acceptance

PRIOR2 = learn.Model(("a", "b"), (1.0, 1.0), -2.0)


class TestFit:
    def test_no_outcomes_keep_the_prior(self) -> None:
        assert learn.fit(PRIOR2, np.zeros((0, 2)), np.zeros(0)) == PRIOR2
        one_class = learn.fit(PRIOR2, np.ones((5, 2)), np.zeros(5))
        assert one_class == PRIOR2

    def test_many_outcomes_overrule_the_prior(self) -> None:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(4000, 2))
        y = rng.random(4000) < 1 / (1 + np.exp(-(3 * x[:, 0] - 1.0 * x[:, 1])))
        m = learn.fit(PRIOR2, x, y)
        assert m.coef[0] == pytest.approx(3.0, abs=0.4)
        assert m.coef[1] == pytest.approx(-1.0, abs=0.3)
        assert m.outcomes == 4000


class TestCalibration:
    def test_prior_is_monotone_and_sane(self) -> None:
        p = Calibration()(np.linspace(0, 1, 11))
        assert np.all(np.diff(p) > 0)
        assert 0.05 < p[0] < 0.2 and p[5] == pytest.approx(0.5)

    def test_fitted_on_outcomes_it_tracks_the_realised_rate(self) -> None:
        rng = np.random.default_rng(2)
        scores = rng.random(3000)
        ok = rng.random(3000) < 0.1 + 0.3 * scores  # 10% … 40%
        cal = Calibration.fit(zip(scores, ok, strict=True))
        assert cal(np.array([0.0]))[0] == pytest.approx(0.1, abs=0.05)
        assert cal(np.array([1.0]))[0] == pytest.approx(0.4, abs=0.06)
        assert np.all(np.diff(cal(np.linspace(0, 1, 21))) >= 0)

    def test_scores_that_predict_the_opposite_keep_the_order_at_the_base_rate(self) -> None:
        outcomes = [(0.9, False)] * 50 + [(0.1, True)] * 50
        cal = Calibration.fit(outcomes)
        p = cal(np.linspace(0, 1, 11))
        assert np.all(np.diff(p) > 0)  # never flat: equal chances would lose the ranking
        assert cal.model.coef[0] == pytest.approx(PRIOR.coef[0]) and cal.model is not PRIOR
        fitted = cal(np.array([s for s, _ in outcomes]))
        assert fitted.mean() == pytest.approx(0.5, abs=0.01)  # the level is the realised rate

    def test_the_level_follows_a_low_realised_rate(self) -> None:
        outcomes = [(0.9, False)] * 95 + [(0.1, True)] * 5
        fitted = Calibration.fit(outcomes)(np.array([0.9, 0.1]))
        assert (fitted[0] * 95 + fitted[1] * 5) / 100 == pytest.approx(0.05, abs=0.01)
        assert fitted[0] > fitted[1]


class TestPriors:
    def test_help_halves_every_half_life(self) -> None:
        a = Activity()
        a.add("x", 0.0)
        a.add("x", 0.0)
        assert a.value("x", WEEK) == pytest.approx(1.0)
        assert a.value("nobody", 0.0) == 0.0

    def test_acceptance_is_neutral_without_outcomes(self) -> None:
        assert acceptance(0, 0) == 0.5
        assert acceptance(3, 0) > 0.5 > acceptance(0, 3)


class TestExpectedSuccesses:
    def test_probabilities_not_scores_decide_and_floor_holds_for_askers(self) -> None:
        # Two askers (0, 1) compete for one expert slot each on experts 2 and 3.
        u = np.array([0, 0, 1])
        v = np.array([2, 3, 2])
        p = np.array([0.6, 0.5, 0.2])
        cap = np.array([1, 1, 1, 1])
        cover = np.array([True, True, False, False])
        plan = optimise(4, u, v, p, cap, fairness=True, cover=cover)
        assert sorted(plan.chosen.tolist()) == [1, 2]  # both askers served
        assert plan.covered == plan.viable == 2
        assert sorted(greedy(4, u, v, p, cap).tolist()) == [0]  # greedy strands asker 1
