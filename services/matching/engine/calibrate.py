"""Scores as probabilities: the chance an introduction is accepted by both.

A match score is a ranking, not a probability; summing scores is not what an
introduction plan should maximise. ``Calibration`` maps a score to
``P(connected) = σ(a·score + b)`` (Platt scaling), fitted on the ecosystem's own
outcomes (connected: 1; declined or rejected: 0) with :mod:`engine.learn`'s
Gaussian prior, so a new ecosystem starts from ``PRIOR``: a monotone map on which a
score of 0 is a long shot (≈ 12%) and a score of 0.5 a coin toss. The map is
strictly monotone for any fit with a > 0, which ``fit`` keeps: outcomes that do
not show a positive slope keep the prior's slope with the level refitted, so equal
chances never scramble the ranking (a plan picking among ties would pick at random).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from services.matching.engine import learn

PRIOR = learn.Model(("score",), (4.0,), -2.0)
IDENTITY = learn.Model(("logit",), (1.0,), 0.0)  # the prior for an input that is a logit
PINNED = 1e9  # prior strength that keeps the slope: only the intercept is fitted


class Calibration:
    def __init__(self, model: learn.Model = PRIOR) -> None:
        self.model = model

    @classmethod
    def fit(cls, outcomes: Iterable[tuple[float, bool]], prior: learn.Model = PRIOR) -> Calibration:
        pairs = list(outcomes)
        if not pairs:
            return cls(prior)
        x = np.array([[s] for s, _ in pairs], dtype=np.float64)
        y = np.array([ok for _, ok in pairs], dtype=np.float64)
        model = learn.fit(prior, x, y)
        if model.coef[0] <= 0:
            # The outcomes do not say a higher score means a higher chance (few, or
            # noisy): keep the prior's slope, fit only the level to the realised rate.
            # A flat map would make every chance equal and lose the ranking's order.
            model = learn.fit(prior, x, y, strength=PINNED)
        return cls(model)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return self.model.probability(np.asarray(scores, np.float64).reshape(-1, 1))
