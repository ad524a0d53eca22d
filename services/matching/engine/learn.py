"""Weights learned from outcomes: a logistic model with a Gaussian prior on its coefficients.

Every suggestion that led somewhere (an introduction accepted and connected, a
question answered) is a positive, every one that did not is a negative; ``fit``
finds the maximum a posteriori coefficients of ``P(success) = σ(b + w·x)`` with
``w ~ N(prior, 1/strength)``. An ecosystem with no outcomes keeps the prior (the
sane default); with many, the data decide. The result is a probability, so it
doubles as the calibration of the score (Platt scaling of its parts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEPS = 50


@dataclass(frozen=True)
class Model:
    names: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    outcomes: int = 0  # how many outcomes it was fitted on (0: the prior alone)

    def logit(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(x, np.float64) @ np.asarray(self.coef) + self.intercept)

    def probability(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(self.logit(x), -30, 30))))


def fit(prior: Model, x: np.ndarray, y: np.ndarray, strength: float = 1.0) -> Model:
    """MAP fit by Newton's method; the intercept has a flat prior (it sets the base rate)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if len(y) == 0 or y.min() == y.max():  # nothing to learn from: keep the prior
        return prior
    design = np.hstack([x, np.ones((len(y), 1))])
    mean = np.array([*prior.coef, 0.0])
    reg = np.full(len(mean), strength)
    reg[-1] = 1e-6
    theta = np.array([*prior.coef, float(np.log(y.mean() / (1 - y.mean())))])

    def loss(t: np.ndarray) -> float:
        z = design @ t
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(reg * (t - mean) ** 2))

    for _ in range(STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -30, 30)))
        grad = design.T @ (p - y) + reg * (theta - mean)
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        size, before = 1.0, loss(theta)
        while loss(theta - size * step) > before and size > 1e-6:  # damped: never uphill
            size /= 2
        theta -= size * step
        if np.abs(size * step).max() < 1e-8:
            break
    return Model(prior.names, tuple(float(c) for c in theta[:-1]), float(theta[-1]), len(y))
