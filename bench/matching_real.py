"""Matching judged on real people: time-split expert finding on public Q&A posts.

Reads ``../shared/data/coffee-stackexchange/Posts.xml`` (relative to the repository;
``MATCHING_REAL_DATA`` overrides the path) and skips with a clear message when absent.
See :mod:`bench._qa` for the protocol. Every method ranks the same candidates for the
same questions; differences against the engine carry paired bootstrap 95% intervals.
Introductions: per window, asker→expert pairs under a capacity of 3 per expert per week;
one succeeds when that expert answered that question.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from bench import _qa_metrics as qm
from bench._qa import Person, Post, Split, load, splits, training
from bench._qa_failures import failures
from services.matching.engine import expert, learn, priors, refit
from services.matching.engine.calibrate import IDENTITY, Calibration
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Asker, Profile, Weights

ROOT = Path(__file__).resolve().parent.parent
RELATIVE = Path("shared") / "data" / "coffee-stackexchange" / "Posts.xml"

# (queries × candidates), higher is better; or (ranking, calibrated chances) of that shape
Scorer = Callable[[Split], np.ndarray | tuple[np.ndarray, np.ndarray]]


def data_path() -> Path:
    """``MATCHING_REAL_DATA``, else ``../shared/data/…`` beside the repository (or a worktree's
    parent)."""
    if os.environ.get("MATCHING_REAL_DATA"):
        return Path(os.environ["MATCHING_REAL_DATA"])
    for up in ROOT.parents[:2]:
        if (up / RELATIVE).exists():
            return up / RELATIVE
    return ROOT.parent / RELATIVE


async def run(quick: bool) -> dict[str, Any]:
    path = data_path()
    if not path.exists():
        return {"skipped": f"no real data at {path} (set MATCHING_REAL_DATA to a Posts.xml)"}
    result = await asyncio.to_thread(evaluate, path)
    result["ablation_ndcg_recall_mrr"] = await asyncio.to_thread(ablation, path)
    result["failures_of_engine"] = await asyncio.to_thread(engine_failures, path)
    return result


# ---------------------------------------------------------------- text of posts


def question_text(q: Post) -> str:
    return " ".join((q.title, q.body, " ".join(t.replace("-", " ") for t in q.tags)))


def _plain(markup: str) -> str:
    """Rendered text for the baselines (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


# ---------------------------------------------------------------- the data as the service sees it
#
# Stack Exchange                     partnermesh (what the matching service receives)
# a question (title, body, tags)     a public forum thread started by the asker (its tags
#                                    as words of its text): the asker's ``asked``
# an answer                          a reply in that thread: help given at that time
#                                    (the recency-weighted activity prior), and the
#                                    thread's title with the reply: the replier's ``helped``
# A answered B's question before     A helped B (``Asker.helped`` when B asks: reciprocity)
# (no profile text, no intros)       declared needs/offers empty; acceptance neutral (½)


def person_profile(pid: str, person: Person, extra_needs: tuple[str, ...] = ()) -> Profile:
    """A person as the service sees them: nothing declared (the dump has no profiles), the
    threads they started and the threads they replied in, with their replies. Bodies are
    passed as written (HTML): hygiene is the engine's job."""
    return Profile(
        pid,
        pid,
        pid,
        needs=extra_needs,
        asked=() if extra_needs else tuple(question_text(q) for q in person.questions),
        helped=tuple(q.title for q in person.answered) + tuple(a.body for a in person.answers),
    )


def helped_by(split: Split, asker: str) -> dict[str, float]:
    """Times ``asker`` replied in each other person's threads before the cut-off."""
    out: dict[str, float] = {}
    for q in split.people.get(asker, Person()).answered:
        if q.author != asker:
            out[q.author] = out.get(q.author, 0.0) + 1.0
    return out


def writing(person: Person) -> str:
    parts = [question_text(q) for q in person.questions]
    parts += [a.body for a in person.answers] + person.answered_titles
    return _plain(" ".join(parts))


# ---------------------------------------------------------------- methods


def random_scores(split: Split) -> np.ndarray:
    return np.zeros((len(split.queries), len(split.candidates)))


def activity_scores(split: Split) -> np.ndarray:
    counts = np.array([len(split.people[c].answers) for c in split.candidates], float)
    return np.tile(counts, (len(split.queries), 1))


def tfidf_scores(split: Split) -> np.ndarray:
    docs = [writing(split.people[c]) for c in split.candidates]
    queries = [_plain(question_text(q.question)) for q in split.queries]
    vec = TfidfVectorizer(sublinear_tf=True).fit(docs + queries)
    # scikit-learn is untyped: a sparse matrix product, densified to an ndarray
    return cast(np.ndarray, (vec.transform(queries) @ vec.transform(docs).T).toarray())


def engine_profile_scores(split: Split, weights: Weights | None = None) -> np.ndarray:
    """The engine as a profile matcher: the asker, needing this question, against everyone."""
    ix = MatchIndex(weights)
    ix.build(person_profile(pid, p) for pid, p in split.people.items())
    col = {c: i for i, c in enumerate(split.candidates)}
    out = np.zeros((len(split.queries), len(split.candidates)))
    for r, q in enumerate(split.queries):
        asker = split.people.get(q.question.author, Person())
        me = person_profile(q.question.author, asker, (question_text(q.question),))
        qid = f"query:{q.question.id}"
        ix.upsert(replace(me, id=qid))
        for s in ix.query(qid, len(split.candidates) + 1):
            if s.id in col:
                out[r, col[s.id]] = s.score
        ix.remove(qid)
    return out


def _index(
    split: Split, weights: Weights | None = None, half_life: float = priors.WEEK
) -> MatchIndex:
    ix = MatchIndex(weights)
    ix.build(person_profile(pid, p) for pid, p in split.people.items())
    helped = priors.Activity(half_life)
    answers = sorted((a for p in split.people.values() for a in p.answers), key=lambda a: a.when)
    for a in answers:
        helped.add(a.author, a.when.timestamp())
    for pid, value in helped.snapshot(split.cutoff.timestamp()).items():
        ix.set_activity(pid, value)
    return ix


def _features(split: Split, **index_kw: Any) -> np.ndarray:
    """(queries × candidates × features) of the expert-finding mode."""
    ix = _index(split, **index_kw)
    col = {c: i for i, c in enumerate(split.candidates)}
    out = np.zeros((len(split.queries), len(split.candidates), len(expert.FEATURES)))
    for r, q in enumerate(split.queries):
        ctx = Asker(exclude={q.question.author}, helped=helped_by(split, q.question.author))
        for b, idx, x in expert.features(ix, question_text(q.question), ctx=ctx):
            for j, i in enumerate(idx):
                c = col.get(b.ids[i])
                if c is not None:
                    out[r, c] = x[j]
    return out


def forum(split: Split) -> tuple[list[refit.Thread], list[refit.Reply]]:
    """The posts before the cut-off as the service's forum: questions are public threads
    (body and tags as their text), answers are replies."""
    threads, replies = [], []
    for p in split.posts:
        if p.when >= split.cutoff:
            break
        if p.kind == "q":
            tags = " ".join(t.replace("-", " ") for t in p.tags)
            threads.append(
                refit.Thread(p.id, p.author, p.when.timestamp(), p.title, f"{p.body} {tags}")
            )
        elif p.parent:
            replies.append(refit.Reply(p.author, p.parent, p.when.timestamp(), p.body))
    return threads, replies


def learned_model(split: Split) -> learn.Model:
    """What the service would use at the cut-off: the default, refitted on the forum
    outcomes known by then and kept only if it ranked the newest of them better."""
    threads, replies = forum(split)
    return refit.refit([], threads, replies, split.cutoff.timestamp()).model


def calibrated_default(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The default model's ranking, its chances calibrated (Platt on its logit) on the
    outcomes known at the cut-off: the order is the default's, the sums are honest."""
    cal = Calibration(IDENTITY)
    train = training(split)
    if train is not None:
        x = expert.DEFAULT.logit(_features(train)).ravel()
        y = np.array([[c in q.truth for c in train.candidates] for q in train.queries]).ravel()
        cal = Calibration.fit(zip(x, y, strict=True), IDENTITY)
    logit = expert.DEFAULT.logit(_features(split))
    return logit, cal(logit.ravel()).reshape(logit.shape)


def engine_expert_scores(split: Split, learned: bool = True) -> np.ndarray:
    """ "Help me with this need": the question against everyone, with behaviour priors;
    the score is the probability of helping (default model, or refitted on outcomes)."""
    model = learned_model(split) if learned else expert.DEFAULT
    return model.probability(_features(split))


METHODS: dict[str, Scorer] = {
    "engine": calibrated_default,
    "engine_weights_refit_on_outcomes": engine_expert_scores,
    "engine_profile_mode": engine_profile_scores,
    "tfidf": tfidf_scores,
    "activity_prior": activity_scores,
    "random": random_scores,
}


# ---------------------------------------------------------------- evaluation


def _rows(split: Split, scores: np.ndarray) -> list[tuple[float, float, float]]:
    out = []
    for r, q in enumerate(split.queries):
        order = qm.ranking(scores[r], seed=int(q.question.id))
        out.append(qm.per_query([split.candidates[i] for i in order], q.truth))
    return out


def _variant(coef: tuple[float, ...], **index_kw: Any) -> Scorer:
    model = learn.Model(expert.FEATURES, coef, expert.DEFAULT.intercept)
    return lambda split: model.probability(_features(split, **index_kw))


def _as_it_was(split: Split) -> np.ndarray:
    """The profile matcher with both directions' harmonic mean (one-sided matches zeroed)."""
    return engine_profile_scores(split, Weights(mutual=1.0))


_TEXT = (*expert.DEFAULT.coef[:3], 0.0, 0.0, 0.0)
_BEHAVIOUR = (*expert.DEFAULT.coef[:5], 0.0)  # text and activity, no reciprocity

ABLATION: dict[str, Scorer] = {
    "profile_mode_harmonic_mean_as_before": _as_it_was,
    "profile_mode_one_sided_counts": engine_profile_scores,
    "expert_text_only": _variant(_TEXT),
    "expert_text_without_related_words": _variant(_TEXT, weights=Weights(related=0.0)),
    "expert_text_plus_all_time_activity": _variant(_BEHAVIOUR, half_life=float("inf")),
    "expert_text_plus_recent_activity": _variant(_BEHAVIOUR),
    "expert_text_plus_recent_activity_plus_reciprocity (default engine)": _variant(
        expert.DEFAULT.coef
    ),
    "recent_activity_only": _variant((0.0, 0.0, 0.0, 1.0, 0.0, 0.0)),
}


def _ranking(out: np.ndarray | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return out[0] if isinstance(out, tuple) else out


def ablation(path: Path) -> dict[str, Any]:
    """What each change contributes (rankings only, same protocol)."""
    parts = splits(load(path))
    out: dict[str, Any] = {}
    for name, scorer in ABLATION.items():
        rows = [r for split in parts for r in _rows(split, _ranking(scorer(split)))]
        out[name] = qm.summary(np.array(rows))
    return out


def engine_failures(path: Path) -> dict[str, Any]:
    """The questions the default engine misses, by what explains each miss."""
    return failures(splits(load(path)), lambda s: _ranking(calibrated_default(s)), writing)


def evaluate(path: Path, methods: dict[str, Scorer] | None = None) -> dict[str, Any]:
    methods = methods or METHODS
    posts = load(path)
    parts = splits(posts)
    rows: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
    intros: dict[str, list[dict[str, Any]]] = {m: [] for m in methods if m != "random"}
    hits = pairs = 0
    for split in parts:
        truth = np.array([[c in q.truth for c in split.candidates] for q in split.queries])
        weeks = np.array([q.week for q in split.queries], np.int64)
        hits, pairs = hits + int(truth.sum()), pairs + truth.size
        for name, scorer in methods.items():
            out = scorer(split)
            scores, chances = out if isinstance(out, tuple) else (out, out)
            rows[name] += _rows(split, scores)
            if name != "random":
                intros[name].append(qm.introductions(chances, truth, weeks, ranking=scores))
    arrays = {m: np.array(r) for m, r in rows.items()}
    ours = arrays["engine"]
    ranked = {m: qm.summary(a) for m, a in arrays.items()}
    return {
        "data": str(path.name),
        "cutoffs": [s.cutoff.isoformat(timespec="minutes") for s in parts],
        "test_questions": len(ours),
        "candidates_per_cutoff": [len(s.candidates) for s in parts],
        "ranking": ranked,
        "engine_minus": {m: qm.bootstrap(ours, a) for m, a in arrays.items() if m != "engine"},
        "introductions": {
            "capacity_per_expert_per_week": 3,
            "base_rate": {"precision": round(hits / max(pairs, 1), 4), "pairs": pairs},
            **{m: qm.precision(p, hits / max(pairs, 1)) for m, p in intros.items()},
        },
    }
