"""Social proximity from who already talks to whom (mentions, shared threads and spaces).

``proximity(a)`` scores everyone within two hops of a: a direct tie counts its
weight, a common contact c adds ``min(w_ac, w_cb) / log(2 + degree(c))`` (Adamic–Adar:
a contact who knows everyone says little), and the sum is squashed into [0, 1).
"""

from __future__ import annotations

import math
from collections import defaultdict

HUB_LIMIT = 500  # neighbours of a contact looked at (keeps hubs cheap)


class SocialGraph:
    def __init__(self) -> None:
        self.adj: dict[str, dict[str, float]] = defaultdict(dict)

    def set(self, a: str, b: str, weight: float) -> None:
        if a == b:
            return
        self.adj[a][b] = weight
        self.adj[b][a] = weight

    def add(self, a: str, b: str, weight: float = 1.0) -> None:
        if a != b:
            self.set(a, b, self.adj.get(a, {}).get(b, 0.0) + weight)

    def __len__(self) -> int:
        return sum(len(n) for n in self.adj.values()) // 2

    def proximity(self, a: str) -> dict[str, float]:
        raw: dict[str, float] = defaultdict(float)
        for c, w_ac in self.adj.get(a, {}).items():
            raw[c] += w_ac
            neighbours = self.adj.get(c, {})
            damp = 1.0 / math.log(2 + len(neighbours))
            for i, (b, w_cb) in enumerate(neighbours.items()):
                if i >= HUB_LIMIT:
                    break
                if b != a:
                    raw[b] += min(w_ac, w_cb) * damp
        return {b: 1.0 - math.exp(-x / 2) for b, x in raw.items()}
