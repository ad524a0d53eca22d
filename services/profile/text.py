"""Text analysis for tag clouds and directory search: words, stems, phrases.

A text becomes terms: single stemmed words and two-word phrases of adjacent
content words (a phrase never spans a stop word or punctuation). Stemming comes
from Snowball (``snowballstemmer``), in the language whose stop words the text
uses most (English when none stand out). Each term keeps the surface form it was
seen in most often, so clouds show ``cold chain``, not ``cold chain``'s stems.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import snowballstemmer

from mesh.hygiene import STOPWORDS as PROSE_FILLER
from mesh.hygiene import rendered
from services.profile.stopwords import STOP_WORDS

_URL = re.compile(r"https?://\S+|www\.\S+|\S+@\S+")
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)
# A word starts with a letter; hyphens and apostrophes split words but keep the phrase.
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|[.,;:!?()\[\]{}\"|/\n•·–—]")
_FOLD_KEEP = re.compile(r"[^a-z0-9]")
MIN_LEN = 2
MAX_TEXT = 20000


@lru_cache(maxsize=16)
def _stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(language)


@lru_cache(maxsize=100_000)
def stem(word: str, language: str = "english") -> str:
    return str(_stemmer(language).stemWord(word))


def fold(token: str) -> str:
    """ASCII-fold a stem for the search index (the same on SQLite and PostgreSQL)."""
    decomposed = unicodedata.normalize("NFKD", token)
    return _FOLD_KEEP.sub("", decomposed.encode("ascii", "ignore").decode().lower())


def _words(text: str) -> list[str]:
    # Rendered text only: markup, its attributes and scripts never become terms.
    text = _CODE.sub(" ", _URL.sub(" ", rendered(text[:MAX_TEXT])))
    return [t.lower() for t in _TOKEN.findall(text)]


def guess_language(words: list[str]) -> str:
    hits = {lang: sum(1 for w in words if w in stops) for lang, stops in STOP_WORDS.items()}
    best = max(hits, key=lambda lang: (hits[lang], lang == "english"))
    return best if hits[best] > hits["english"] else "english"


@dataclass
class Terms:
    """Term frequencies of one text, with the surface form of each term."""

    counts: Counter[str] = field(default_factory=Counter)
    surfaces: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, key: str, surface: str, n: int = 1) -> None:
        self.counts[key] += n
        self.surfaces.setdefault(key, Counter())[surface] += n

    def merge(self, other: Terms) -> None:
        for key in other.counts:
            for surface, m in other.surfaces[key].items():
                self.add(key, surface, m)

    def surface(self, key: str) -> str:
        return self.surfaces[key].most_common(1)[0][0]


def analyze(text: str) -> Terms:
    """Unigram and bigram terms of ``text`` (keys are stems, ``"a b"`` for phrases)."""
    words = _words(text)
    language = guess_language([w for w in words if w.isalpha()])
    stops = STOP_WORDS[language] | STOP_WORDS["english"] | PROSE_FILLER
    terms = Terms()
    previous: tuple[str, str] | None = None
    for token in words:
        for part in re.split(r"['’]", token) if "'" in token or "’" in token else [token]:
            if not part[:1].isalpha() or part in stops or len(part) < MIN_LEN:
                previous = None
                continue
            key = stem(part, language)
            terms.add(key, part)
            if previous is not None:
                terms.add(f"{previous[0]} {key}", f"{previous[1]} {part}")
            previous = (key, part)
    return terms


def search_tokens(text: str) -> list[str]:
    """The folded stems of ``text`` that the directory index stores and queries use."""
    tokens = []
    for key in analyze(text).counts:
        if " " not in key:
            folded = fold(key)
            if folded:
                tokens.append(folded)
    return tokens


def index_text(*parts: str) -> str:
    """Space-separated folded stems (with repeats) for the full-text index."""
    out: list[str] = []
    for part in parts:
        for key, n in analyze(part).counts.items():
            if " " not in key and (folded := fold(key)):
                out.extend([folded] * n)
    return " ".join(out)
