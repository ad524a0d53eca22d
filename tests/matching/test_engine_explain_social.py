"""Explanations name fields, terms and concepts; social proximity ranks ties."""

from services.matching.engine.explain import explain
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Profile
from services.matching.engine.social import SocialGraph


class TestExplain:
    def test_reasons_name_both_wordings_of_the_shared_concept(self) -> None:
        ix = MatchIndex()
        ix.build(
            [
                Profile(
                    "a",
                    "p1",
                    "A",
                    ("looking for freight forwarding",),
                    ("kpi reporting",),
                    ("python",),
                    ("machine learning",),
                    ("retail",),
                    ("germany",),
                ),
                Profile(
                    "b",
                    "p2",
                    "B",
                    ("dashboards",),
                    ("cargo transport",),
                    (),
                    ("neural networks",),
                    ("fmcg",),
                    ("austria",),
                ),
            ]
        )
        reasons = {(r.kind, r.concept): r for r in explain(ix, "a", "b", social=0.3)}
        need = reasons[("need_offer", "freight")]
        assert (need.field_a, need.field_b) == ("needs", "offers")
        assert need.terms_a == ("freight forwarding",) and need.terms_b == ("cargo transport",)
        assert reasons[("offer_need", "bi")].terms_a == ("kpi reporting",)
        assert reasons[("interest", "ml")].terms_b == ("neural networks",)
        assert reasons[("region", None)].terms_b == ("austria",)
        assert reasons[("industry", None)].terms_a == ("retail",)
        assert ("social", None) in reasons

    def test_unknown_people_have_no_reasons(self) -> None:
        assert explain(MatchIndex(), "x", "y") == []


class TestSocial:
    def test_direct_ties_beat_common_contacts_beat_strangers(self) -> None:
        g = SocialGraph()
        g.add("a", "b", 1.0)
        g.add("b", "c", 1.0)
        g.add("x", "y", 1.0)
        prox = g.proximity("a")
        assert prox["b"] > prox["c"] > 0
        assert "y" not in prox and "a" not in prox

    def test_ties_accumulate_and_are_symmetric(self) -> None:
        g = SocialGraph()
        g.add("a", "b")
        g.add("b", "a", 2.0)
        assert g.adj["a"]["b"] == g.adj["b"]["a"] == 3.0
        assert len(g) == 1
