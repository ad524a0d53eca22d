"""Domain vocabulary learned from the ecosystem's own writing: related words by co-occurrence.

Where the taxonomy has no concept for a word, the words that keep appearing in the
same phrases as it (normalised pointwise mutual information, npmi ∈ (0, 1]) stand in:
a need worded "extraction" also reaches someone who writes "grind" and "brew ratio"
if the ecosystem's people use them together. Learned at build from the profiles,
no network and no model; used to widen a need (expert finding), never to explain.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from itertools import combinations

MIN_PAIR = 2  # a pair seen once is chance
MIN_NPMI = 0.2
NEIGHBOURS = 5
MAX_TERMS = 40  # per phrase: the cost of pair counting stays linear in the corpus


class Related:
    def __init__(self) -> None:
        self.near: dict[str, tuple[tuple[str, float], ...]] = {}

    def fit(self, phrases: Iterable[Iterable[str]]) -> Related:
        """``phrases``: the term features (``t:…``) of each phrase in the ecosystem."""
        df: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        n = 0
        for terms in phrases:
            uniq = sorted(set(terms))[:MAX_TERMS]
            if not uniq:
                continue
            n += 1
            df.update(uniq)
            pairs.update(combinations(uniq, 2))
        found: dict[str, list[tuple[float, str]]] = {}
        for (a, b), nab in pairs.items():
            if nab < MIN_PAIR or nab == n:
                continue
            pmi = math.log(n * nab / (df[a] * df[b]))
            npmi = pmi / -math.log(nab / n)
            if npmi >= MIN_NPMI:
                found.setdefault(a, []).append((npmi, b))
                found.setdefault(b, []).append((npmi, a))
        self.near = {
            t: tuple((w, round(s, 4)) for s, w in sorted(c, reverse=True)[:NEIGHBOURS])
            for t, c in found.items()
        }
        return self

    def expand(self, raw: dict[str, float], share: float) -> dict[str, float]:
        """``raw`` plus each term's related words at ``share`` × npmi of its weight."""
        out = dict(raw)
        for key, weight in raw.items():
            for other, s in self.near.get(key, ()):
                if other not in raw:
                    out[other] = out.get(other, 0.0) + share * s * weight
        return out

    def __len__(self) -> int:
        return len(self.near)
