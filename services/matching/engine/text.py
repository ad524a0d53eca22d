"""From free-text phrases to features: tokens → stems → taxonomy concepts (+ leftover terms).

``Featuriser.phrase("shipping goods to Poland")`` gives ``[("c:freight", "shipping goods"),
("t:poland", "poland")]``: each feature with the words that produced it, so a match can
explain itself. Results are cached per phrase (ecosystems repeat their wording a lot).
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

from mesh.hygiene import STOPWORDS as PROSE_STOPWORDS
from mesh.hygiene import rendered
from services.matching.engine import taxonomy

STOPWORDS = PROSE_STOPWORDS | frozenset(
    """a an and are as at be by for from help in into is it looking of on or our partner
    partners services service solutions solution support the to we with need needs want
    offer offers provide providing expert experts experienced company companies s
    reliable quality-minded""".split()
)
_TOKEN = re.compile(r"[a-z0-9][a-z0-9+#]*")
_STEMMER = snowballstemmer.stemmer("english")
MAX_NGRAM = 4
CACHE_LIMIT = 200_000

Feature = tuple[str, str]  # (feature key, the words it came from)


def tokens(text: str) -> list[str]:
    """Words of the rendered text (markup, entities and web addresses never become words)."""
    return _TOKEN.findall(rendered(text).lower().replace("-", " "))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def _stems(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((stem(t), t) for t in tokens(text) if t not in STOPWORDS and not t.isdigit())


def _phrase_table(entries: dict[str, tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {}
    for key, surfaces in entries.items():
        for surface in (key.replace("_", " "), *surfaces):
            stems = tuple(s for s, _ in _stems(surface))
            if stems:
                table.setdefault(stems, key)
    return table


class Featuriser:
    """Maps phrases to concept features ("c:<concept>") and leftover term features ("t:<stem>")."""

    def __init__(self, concepts: dict[str, tuple[str, tuple[str, ...]]] | None = None) -> None:
        concepts = taxonomy.CONCEPTS if concepts is None else concepts
        self.table = _phrase_table({k: v[1] for k, v in concepts.items()})
        self.regions = _canon_table(taxonomy.REGIONS)
        self.industries = _canon_table(taxonomy.INDUSTRIES)
        self._cache: dict[str, tuple[Feature, ...]] = {}

    def phrase(self, text: str) -> tuple[Feature, ...]:
        cached = self._cache.get(text)
        if cached is None:
            cached = self._phrase(text)
            if len(self._cache) < CACHE_LIMIT:
                self._cache[text] = cached
        return cached

    def forget(self) -> None:
        """Drop the phrase cache (it pays off within a build; memory matters after)."""
        self._cache.clear()

    def _phrase(self, text: str) -> tuple[Feature, ...]:
        stems = _stems(text)
        out: list[Feature] = []
        i = 0
        while i < len(stems):
            for n in range(min(MAX_NGRAM, len(stems) - i), 0, -1):
                concept = self.table.get(tuple(s for s, _ in stems[i : i + n]))
                if concept is not None:
                    out.append(("c:" + concept, " ".join(w for _, w in stems[i : i + n])))
                    i += n
                    break
            else:
                if len(stems[i][0]) > 1:
                    out.append(("t:" + stems[i][0], stems[i][1]))
                i += 1
        return tuple(out)

    def region(self, name: str) -> str:
        key = " ".join(tokens(name))
        return self.regions.get(key, key)

    def industry(self, name: str) -> str:
        key = " ".join(tokens(name))
        return self.industries.get(key, key)


def _canon_table(entries: dict[str, tuple[str, ...]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for canon, names in entries.items():
        for name in (canon.replace("_", " "), *names):
            table[" ".join(tokens(name))] = canon
    return table
