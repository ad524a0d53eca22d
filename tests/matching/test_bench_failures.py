"""The real-data benchmark's failure classes: each miss lands in the class that explains it."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from bench._qa import Person, Post, Query, Split
from bench._qa_failures import classify, failures

WHEN = datetime(2015, 1, 1)


def post(pid: str, author: str, title: str = "", body: str = "", kind: str = "a") -> Post:
    return Post(pid, kind, WHEN, author, title, body, (), None)


def person(answers: int, body: str = "grinder burr espresso") -> Person:
    return Person(answers=[post(f"a{i}", "x", body=body) for i in range(answers)])


def writing(p: Person) -> str:
    return " ".join(a.body for a in p.answers)


QUESTION = post("100", "asker", "Which burr grinder for espresso?", kind="q")


def split(people: dict[str, Person], truth: set[str]) -> Split:
    candidates = sorted(people)
    return Split(WHEN, people, candidates, [Query(QUESTION, frozenset(truth), 0)], [])


def order_with(best: str, people: dict[str, Person]) -> list[str]:
    return [c for c in sorted(people) if c != best] + [best]


def test_an_answerer_nobody_could_rank_is_new() -> None:
    s = split({"p1": person(5)}, {"newcomer"})
    assert classify(s, s.queries[0], ["p1"], writing) == ("answerer_new", None)


def test_an_answerer_with_little_history() -> None:
    people = {f"p{i}": person(9) for i in range(11)} | {"t": person(1)}
    s = split(people, {"t"})
    assert classify(s, s.queries[0], order_with("t", people), writing) == (
        "answerer_little_history",
        12,
    )


def test_no_shared_words_is_told_apart_from_being_outranked() -> None:
    people = {f"p{i}": person(9) for i in range(11)} | {"t": person(4, "milk frothing pitcher")}
    s = split(people, {"t"})
    kind, _ = classify(s, s.queries[0], order_with("t", people), writing)
    assert kind == "no_shared_words"
    people["t"] = person(4)  # same words as the question now
    kind, _ = classify(s, s.queries[0], order_with("t", people), writing)
    assert kind == "outranked_by_busier"
    people["p0"] = person(3)  # one of the top ten is quieter than the true answerer
    kind, _ = classify(s, s.queries[0], order_with("t", people), writing)
    assert kind == "other"


def test_hits_are_not_counted_as_failures() -> None:
    people = {f"p{i}": person(9) for i in range(11)} | {"t": person(4)}
    s = split(people, {"t"})
    ranked_first = np.array([[1.0 if c == "t" else 0.0 for c in s.candidates]])
    ranked_last = np.array([[0.0 if c == "t" else 1.0 for c in s.candidates]])
    assert failures([s], lambda _: ranked_first, writing)["missed_top10"] == 0
    missed = failures([s], lambda _: ranked_last, writing)
    assert missed["missed_top10"] == 1 and missed["by_class"]["outranked_by_busier"] == 1
    assert missed["examples"][0]["true_answerer_rank"] == 12
