"""Where the engine still fails on real Q&A: each test question it misses (no true
answerer in its top 10), put in the first class that explains it.

- ``answerer_new``: nobody who answered had answered anything before the cut-off, so no
  method could rank them (the protocol counts it as a miss for all).
- ``answerer_little_history``: the best-ranked true answerer had answered at most
  ``LITTLE`` questions before the cut-off: little behaviour to learn from.
- ``no_shared_words``: the true answerer's earlier writing shares no content word with
  the question: text cannot connect them, only activity can.
- ``outranked_by_busier``: the engine's top 10 were all more active than the true
  answerer (the activity prior wins over their text evidence).
- ``other``: none of the above.

Examples name the question's title and the ranks, never who asked or answered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import _qa_metrics as qm
from bench._qa import Person, Query, Split
from services.matching.engine.text import STOPWORDS, tokens

LITTLE = 2
EXAMPLES_PER_CLASS = 2
CLASSES = (
    "answerer_new",
    "answerer_little_history",
    "no_shared_words",
    "outranked_by_busier",
    "other",
)


def _words(text: str) -> set[str]:
    return {t for t in tokens(text) if t not in STOPWORDS and not t.isdigit() and len(t) > 2}


def classify(
    split: Split, query: Query, order: list[str], writing: Callable[[Person], str]
) -> tuple[str, int | None]:
    """The class of a miss and the best true answerer's rank (1-based; None when absent)."""
    ranks = [r for r, c in enumerate(order) if c in query.truth]
    if not ranks:
        return "answerer_new", None
    best = order[ranks[0]]
    person = split.people.get(best, Person())
    rank = ranks[0] + 1
    if len(person.answers) <= LITTLE:
        return "answerer_little_history", rank
    question = _words(" ".join((query.question.title, query.question.body)))
    if not question & _words(writing(person)):
        return "no_shared_words", rank
    answers = len(person.answers)
    top = order[: qm.K]
    if all(len(split.people.get(c, Person()).answers) > answers for c in top):
        return "outranked_by_busier", rank
    return "other", rank


def failures(
    parts: list[Split],
    scorer: Callable[[Split], np.ndarray],
    writing: Callable[[Person], str],
) -> dict[str, Any]:
    """Counts per class over every test question the scorer misses, and a few examples."""
    counts: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    total = 0
    for split in parts:
        scores = scorer(split)
        for r, query in enumerate(split.queries):
            total += 1
            order = [split.candidates[i] for i in qm.ranking(scores[r], int(query.question.id))]
            if any(c in query.truth for c in order[: qm.K]):
                continue
            kind, rank = classify(split, query, order, writing)
            counts[kind] += 1
            shown = sum(1 for e in examples if e["class"] == kind)
            if kind != "answerer_new" and shown < EXAMPLES_PER_CLASS:
                examples.append(
                    {
                        "question": query.question.title[:80],
                        "class": kind,
                        "true_answerer_rank": rank,
                        "of_candidates": len(order),
                    }
                )
    missed = sum(counts.values())
    return {
        "test_questions": total,
        "missed_top10": missed,
        "by_class": {k: counts[k] for k in CLASSES},
        "examples": examples,
    }
