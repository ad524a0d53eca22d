"""A circuit breaker per back-end (per process: each replica protects itself).

Closed: calls pass; ``failures`` consecutive failures open it. Open: calls fail at
once until ``cooldown`` passes. Half-open: one trial call; its success closes the
breaker, its failure opens it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False


class Breakers:
    def __init__(self, failures: int, cooldown: float) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._states: dict[str, _State] = {}

    def state(self, key: str) -> str:
        s = self._states.get(key)
        if s is None or s.opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - s.opened_at >= self.cooldown else "open"

    def allow(self, key: str) -> bool:
        """Whether a call may go out now (claims the half-open trial when it is one)."""
        s = self._states.setdefault(key, _State())
        state = self.state(key)
        if state == "closed":
            return True
        if state == "half_open" and not s.trial_running:
            s.trial_running = True
            return True
        return False

    def success(self, key: str) -> None:
        self._states[key] = _State()

    def failure(self, key: str) -> None:
        s = self._states.setdefault(key, _State())
        s.failures += 1
        if s.trial_running or s.failures >= self.failures:
            s.opened_at = time.monotonic()
            s.trial_running = False
