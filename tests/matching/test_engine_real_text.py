"""Real prose: markup never becomes evidence, filler is no reason, explanations read as words."""

import pytest

from mesh.hygiene import rendered
from services.matching.engine.expert import find_experts
from services.matching.engine.explain import expert_reasons, explain
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Asker, Profile
from services.matching.engine.text import Featuriser
from services.matching.engine.vocab import Related

HOSTILE = (
    '<p>Looking for <b>sourdough</b> help</p><script>alert("onerror")</script>'
    '<img src="x.png" onerror="steal()"> see https://example.com/page?q=1 &amp; thanks'
)


class TestHygiene:
    def test_markup_scripts_attributes_and_urls_never_become_words(self) -> None:
        text = rendered(HOSTILE)
        for word in ("script", "alert", "img", "src", "onerror", "steal", "example", "https"):
            assert word not in text.lower()
        assert "sourdough" in text and "&" in text

    def test_html_never_becomes_a_feature(self) -> None:
        keys = [k for k, _ in Featuriser().phrase(HOSTILE)]
        assert keys == ["t:sourdough"]

    def test_filler_of_everyday_prose_is_no_feature(self) -> None:
        prose = "Really, please, I have this thing on Thursday: does anyone know anything?"
        assert Featuriser().phrase(prose) == ()

    def test_plain_text_is_left_as_it_is(self) -> None:
        assert rendered("cold chain 3 < 5 and 7 > 2") == "cold chain 3 < 5 and 7 > 2"


def people() -> list[Profile]:
    return [
        Profile(
            "nadia", "n", "Nadia", needs=("kpi reporting",), offers=("refrigerated transport",)
        ),
        Profile("ole", "o", "Ole", needs=("refrigerated transport",), offers=("bookkeeping",)),
        Profile("ida", "i", "Ida", interests=("sourdough fermentation starters",)),
        Profile("max", "m", "Max", offers=("<div class='x'>web design</div>",)),
        Profile("me", "me", "Me", needs=("cold chain",), offers=("dashboards",)),
    ]


class TestExplanations:
    def test_reasons_are_sentences_in_the_people_own_words(self) -> None:
        ix = MatchIndex()
        ix.build(people())
        reasons = explain(ix, "me", "nadia", social=0.3)
        texts = [r.text for r in reasons]
        assert "Nadia offers refrigerated transport, which you need (cold chain)" in texts
        assert "You offer dashboards, which Nadia needs (kpi reporting)" in texts
        assert "You share contacts with Nadia" in texts
        for r in reasons:  # never stems nor concept keys
            assert "_" not in r.text and "reporting" not in r.text.replace("kpi reporting", "")

    def test_markup_is_no_reason(self) -> None:
        ix = MatchIndex()
        ix.build([*people(), Profile("q", "q", "Q", needs=("a div with a class",))])
        assert all("div" not in r.text for r in explain(ix, "q", "max"))


class TestExpertFinding:
    def ix(self) -> MatchIndex:
        ix = MatchIndex()
        ix.build(people())
        return ix

    def test_offer_and_writing_beat_the_unrelated(self) -> None:
        found = find_experts(self.ix(), "how do I keep sourdough starters alive?", 5)
        assert found[0].id == "ida" and found[0].interests > 0
        found = find_experts(self.ix(), "refrigerated transport to Lyon", 5)
        assert found[0].id == "nadia" and found[0].offers > 0

    def test_help_given_lately_raises_the_chance(self) -> None:
        ix = self.ix()
        plain = {e.id: e.probability for e in find_experts(ix, "web design", 5)}
        ix.set_activity("max", 6.0)
        busy = {e.id: e.probability for e in find_experts(ix, "web design", 5)}
        assert busy["max"] > plain["max"]
        assert busy["nadia"] == pytest.approx(plain["nadia"])

    def test_asker_and_opted_out_are_never_found(self) -> None:
        ix = self.ix()
        ix.set_opt_out("nadia", True)
        ids = [e.id for e in find_experts(ix, "refrigerated transport", 5, ctx=Asker({"ole"}))]
        assert "nadia" not in ids and "ole" not in ids
        assert "nadia" not in [s.id for s in ix.query("me", 10)]
        ix.set_opt_out("nadia", False)
        assert "nadia" in [s.id for s in ix.query("me", 10)]

    def test_expert_reasons_read_as_words(self) -> None:
        ix = self.ix()
        ix.set_activity("nadia", 2.0)
        nadia = find_experts(ix, "refrigerated transport", 1)[0]
        reasons = expert_reasons(ix, "refrigerated transport", nadia)
        assert reasons[0] == "Nadia offers refrigerated transport, which you need"
        assert "Nadia has been helping others lately" in reasons


class TestRelatedWords:
    def test_words_used_together_are_related_and_chance_is_not(self) -> None:
        phrases = [["t:grind", "t:burr"]] * 4 + [["t:grind", "t:kettl"], ["t:milk"]] * 2
        rel = Related().fit(phrases)
        assert rel.near["t:grind"][0][0] == "t:burr"
        grown = rel.expand({"t:burr": 1.0}, 0.5)
        assert 0 < grown["t:grind"] <= 0.5 and "t:milk" not in grown


class TestForumBehaviour:
    """Threads a person started and replied in are evidence; a favour owed raises the odds."""

    def ix(self) -> MatchIndex:
        ix = MatchIndex()
        ix.build(
            [
                *people(),
                Profile("eva", "e", "Eva", helped=("Descaling an espresso machine",)),
                Profile("tom", "t", "Tom", asked=("Which grinder for french press?",)),
                Profile("kim", "k", "Kim"),
                Profile("gus", "g", "Gus", offers=("grinder repair",)),
            ]
        )
        return ix

    def test_help_given_on_a_subject_finds_the_helper_and_says_so(self) -> None:
        ix = self.ix()
        found = find_experts(ix, "my espresso machine needs descaling", 3)
        assert found[0].id == "eva" and found[0].offers > 0
        reasons = expert_reasons(ix, "my espresso machine needs descaling", found[0])
        assert reasons[0].startswith("Eva has helped others with ")
        assert "espresso" in reasons[0] and "descaling" in reasons[0]

    def test_a_thread_started_is_a_need_voiced(self) -> None:
        ix = self.ix()
        tom = next(e for e in find_experts(ix, "grinder for french press", 8) if e.id == "tom")
        assert tom.needs_voiced > 0 and tom.offers == 0
        texts = [r.text for r in explain(ix, "gus", "tom")]
        assert "You offer grinder, which Tom asked about" in texts

    def test_whom_the_asker_helped_rank_higher_only_for_that_asker(self) -> None:
        ix = self.ix()
        plain = {e.id: e.probability for e in find_experts(ix, "bookkeeping", 8)}
        owed = {
            e.id: e
            for e in find_experts(ix, "bookkeeping", 8, ctx=Asker({"me"}, helped={"kim": 2.0}))
        }
        assert owed["kim"].probability > plain["kim"]
        assert owed["kim"].reciprocity == pytest.approx(2.0)
        assert owed["ole"].probability == pytest.approx(plain["ole"])
        assert "You helped Kim before" in expert_reasons(ix, "bookkeeping", owed["kim"])
