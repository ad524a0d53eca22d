"""Per-person priors from behaviour: how much, how lately and how well someone helped.

``Activity`` keeps, per person, a count of the times they helped others (answered
a question, replied in someone's thread, connected after an introduction) that
halves every ``half_life`` seconds: a person who helped last week is likelier to
help this week than one who helped much, long ago. A week is the default, the same
unit introductions are rationed in. ``acceptance`` turns introduction outcomes into
a prior in [0, 1] with one imaginary success and failure, so ½ means nothing known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WEEK = 7 * 24 * 3600.0


@dataclass
class Activity:
    half_life: float = WEEK
    _value: dict[str, float] = field(default_factory=dict)
    _at: dict[str, float] = field(default_factory=dict)

    def add(self, pid: str, when: float, amount: float = 1.0) -> None:
        """One more act of help by ``pid`` at ``when`` (seconds since the epoch)."""
        self._value[pid] = self.value(pid, when) + amount
        self._at[pid] = when

    def forget(self, pid: str) -> None:
        self._value.pop(pid, None)
        self._at.pop(pid, None)

    def value(self, pid: str, now: float) -> float:
        if pid not in self._value:
            return 0.0
        age = max(0.0, now - self._at[pid])
        return self._value[pid] * math.pow(0.5, age / self.half_life)

    def snapshot(self, now: float) -> dict[str, float]:
        return {pid: self.value(pid, now) for pid in self._value}


def acceptance(accepted: int, declined: int) -> float:
    """Share of introductions taken, with one imaginary of each (Laplace): ½ when unknown."""
    return (accepted + 1.0) / (accepted + declined + 2.0)
