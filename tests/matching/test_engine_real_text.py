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
    def test_markup_scripts_attributes_and_urls_never_become_words(self):
        text = rendered(HOSTILE)
        for word in ("script", "alert", "img", "src", "onerror", "steal", "example", "https"):
            assert word not in text.lower()
        assert "sourdough" in text and "&" in text

    def test_html_never_becomes_a_feature(self):
        keys = [k for k, _ in Featuriser().phrase(HOSTILE)]
        assert keys == ["t:sourdough"]

    def test_filler_of_everyday_prose_is_no_feature(self):
        prose = "Really, please, I have this thing on Thursday: does anyone know anything?"
        assert Featuriser().phrase(prose) == ()

    def test_plain_text_is_left_as_it_is(self):
        assert rendered("cold chain 3 < 5 and 7 > 2") == "cold chain 3 < 5 and 7 > 2"


def people():
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
    def test_reasons_are_sentences_in_the_people_own_words(self):
        ix = MatchIndex()
        ix.build(people())
        reasons = explain(ix, "me", "nadia", social=0.3)
        texts = [r.text for r in reasons]
        assert "Nadia offers refrigerated transport, which you need (cold chain)" in texts
        assert "You offer dashboards, which Nadia needs (kpi reporting)" in texts
        assert "You share contacts with Nadia" in texts
        for r in reasons:  # never stems nor concept keys
            assert "_" not in r.text and "reporting" not in r.text.replace("kpi reporting", "")

    def test_markup_is_no_reason(self):
        ix = MatchIndex()
        ix.build([*people(), Profile("q", "q", "Q", needs=("a div with a class",))])
        assert all("div" not in r.text for r in explain(ix, "q", "max"))


class TestExpertFinding:
    def ix(self) -> MatchIndex:
        ix = MatchIndex()
        ix.build(people())
        return ix

    def test_offer_and_writing_beat_the_unrelated(self):
        found = find_experts(self.ix(), "how do I keep sourdough starters alive?", 5)
        assert found[0].id == "ida" and found[0].interests > 0
        found = find_experts(self.ix(), "refrigerated transport to Lyon", 5)
        assert found[0].id == "nadia" and found[0].offers > 0

    def test_help_given_lately_raises_the_chance(self):
        ix = self.ix()
        plain = {e.id: e.probability for e in find_experts(ix, "web design", 5)}
        ix.set_activity("max", 6.0)
        busy = {e.id: e.probability for e in find_experts(ix, "web design", 5)}
        assert busy["max"] > plain["max"]
        assert busy["nadia"] == pytest.approx(plain["nadia"])

    def test_asker_and_opted_out_are_never_found(self):
        ix = self.ix()
        ix.set_opt_out("nadia", True)
        ids = [e.id for e in find_experts(ix, "refrigerated transport", 5, ctx=Asker({"ole"}))]
        assert "nadia" not in ids and "ole" not in ids
        assert "nadia" not in [s.id for s in ix.query("me", 10)]
        ix.set_opt_out("nadia", False)
        assert "nadia" in [s.id for s in ix.query("me", 10)]

    def test_expert_reasons_read_as_words(self):
        ix = self.ix()
        ix.set_activity("nadia", 2.0)
        nadia = find_experts(ix, "refrigerated transport", 1)[0]
        reasons = expert_reasons(ix, "refrigerated transport", nadia)
        assert reasons[0] == "Nadia offers refrigerated transport, which you need"
        assert "Nadia has been helping others lately" in reasons


class TestRelatedWords:
    def test_words_used_together_are_related_and_chance_is_not(self):
        phrases = [["t:grind", "t:burr"]] * 4 + [["t:grind", "t:kettl"], ["t:milk"]] * 2
        rel = Related().fit(phrases)
        assert rel.near["t:grind"][0][0] == "t:burr"
        grown = rel.expand({"t:burr": 1.0}, 0.5)
        assert 0 < grown["t:grind"] <= 0.5 and "t:milk" not in grown
