"""The index: reciprocal scores, filters, exclusions, incremental updates, batch = query."""

from collections.abc import Iterable

import numpy as np
import pytest

from services.matching.engine.batch import candidate_graph, top_k_all
from services.matching.engine.expert import find_experts
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Asker, Filter, Profile
from services.matching.engine.synthetic import generate


def person(
    pid: str,
    partner: str,
    needs: Iterable[str] = (),
    offers: Iterable[str] = (),
    regions: Iterable[str] = ("germany",),
    industries: Iterable[str] = ("automotive",),
    interests: Iterable[str] = (),
) -> Profile:
    return Profile(
        pid,
        partner,
        pid.title(),
        tuple(needs),
        tuple(offers),
        (),
        tuple(interests),
        tuple(industries),
        tuple(regions),
    )


@pytest.fixture
def small() -> MatchIndex:
    """Alice needs freight and offers dashboards; Bob is her complement in other words."""
    ix = MatchIndex()
    ix.build(
        [
            person("alice", "north", ["freight forwarding"], ["business intelligence"]),
            person("bob", "west", ["kpi reporting"], ["cargo transport"]),
            person("oneway", "east", ["penetration testing"], ["haulage"]),
            person("mirror", "south", ["freight forwarding"], ["bookkeeping"]),
            person(
                "far",
                "east",
                ["dashboards"],
                ["shipping goods"],
                regions=("brazil",),
                industries=("fashion",),
            ),
            person("colleague", "north", ["management reporting"], ["international shipping"]),
        ]
    )
    return ix


class TestQuery:
    def test_complement_beats_decoys(self, small: MatchIndex) -> None:
        ranked = small.query("alice", 10)
        assert [s.id for s in ranked][:2] == ["bob", "far"]
        assert "mirror" not in [s.id for s in ranked]  # needs what alice needs: no use to her

    def test_reciprocal_weighs_both_directions_and_mutual_interest(self, small: MatchIndex) -> None:
        w = small.w
        bob = small.pair("alice", "bob")
        assert bob is not None
        assert bob.ab > 0 and bob.ba > 0
        hm = 2 * bob.ab * bob.ba / (bob.ab + bob.ba)
        one_sided = w.direct * bob.ab + (1 - w.direct) * bob.ba
        assert bob.reciprocal == pytest.approx(w.mutual * hm + (1 - w.mutual) * one_sided)
        oneway = small.pair("alice", "oneway")
        assert oneway is not None
        assert oneway.ab > 0 and oneway.ba == 0
        # One-sided need→offer evidence counts (it used to be zeroed), below a mutual match.
        assert 0 < oneway.reciprocal == pytest.approx((1 - w.mutual) * w.direct * oneway.ab)
        assert oneway.reciprocal < bob.reciprocal

    def test_one_sided_match_ranks_above_the_unrelated(self, small: MatchIndex) -> None:
        ranked = [s.id for s in small.query("alice", 10)]
        assert "oneway" in ranked and "mirror" not in ranked
        assert ranked.index("oneway") > ranked.index("bob")

    def test_region_and_industry_fit_rank_the_nearer_complement_first(
        self, small: MatchIndex
    ) -> None:
        bob, far = small.pair("alice", "bob"), small.pair("alice", "far")
        assert bob is not None and far is not None
        assert bob.reciprocal == pytest.approx(far.reciprocal, rel=0.3)
        assert bob.score > far.score

    def test_same_partner_only_on_request(self, small: MatchIndex) -> None:
        assert "colleague" not in [s.id for s in small.query("alice", 10)]
        ids = [s.id for s in small.query("alice", 10, Filter(include_same_partner=True))]
        assert "colleague" in ids

    def test_filters(self, small: MatchIndex) -> None:
        assert [s.id for s in small.query("alice", 10, Filter(regions=frozenset({"Brazil"})))] == [
            "far"
        ]
        assert [s.id for s in small.query("alice", 10, Filter(industries=frozenset({"cars"})))] == [
            "bob",
            "oneway",  # serves alice's need one-sidedly: counts, after the mutual match
        ]
        assert [s.id for s in small.query("alice", 10, Filter(partners=frozenset({"east"})))] == [
            "far",
            "oneway",
        ]
        assert small.query("alice", 10, Filter(regions=frozenset({"atlantis"}))) == []
        best = small.query("alice", 1)[0].score
        assert small.query("alice", 10, Filter(min_score=best)) == []

    def test_exclusions_and_penalties(self, small: MatchIndex) -> None:
        assert next(s.id for s in small.query("alice", 10, ctx=Asker(exclude={"bob"}))) == "far"
        punished = small.query("alice", 10, ctx=Asker(penalties={"west": 0.1}))
        assert punished[0].id == "far"

    def test_social_proximity_counts(self, small: MatchIndex) -> None:
        plain = small.pair("alice", "far")
        assert plain is not None
        warm = small.query("alice", 10, ctx=Asker(social={"far": 1.0}))
        assert {s.id: s.score for s in warm}["far"] > plain.score

    def test_unknown_asker_gets_nothing(self, small: MatchIndex) -> None:
        assert small.query("nobody", 10) == []


class TestIncremental:
    def test_upsert_is_visible_to_the_next_query(self, small: MatchIndex) -> None:
        small.upsert(person("newbie", "zeta", ["cargo insurance"], ["freight forwarding"]))
        small.upsert(person("carla", "zeta", ["dashboards"], ["cargo transport"]))
        scores = {s.id: s.score for s in small.query("alice", 10)}
        assert scores["carla"] == pytest.approx(scores["bob"])  # same concepts, other words
        # newbie has nothing alice offers: she is shown only for what newbie can do for her
        alice = next(s for s in small.query("newbie", 10) if s.id == "alice")
        assert alice.ab == 0 and alice.ba > 0 and alice.score < scores["bob"]

    def test_a_changed_profile_stops_matching(self, small: MatchIndex) -> None:
        small.upsert(person("bob", "west", ["recycling"], ["cloud hosting"]))
        assert "bob" not in [s.id for s in small.query("alice", 10)]
        small.remove("far")
        assert "far" not in [s.id for s in small.query("alice", 10)]

    def test_a_snapshot_is_unchanged_by_later_updates(self, small: MatchIndex) -> None:
        """Expert finding runs in a worker thread over a snapshot taken on the event loop;
        an update arriving meanwhile (hide in the compiled block, then add to the delta)
        must not make the person vanish from that query."""
        asked = "cargo transport"
        snap = small.snapshot()
        small.upsert(person("bob", "west", ["kpi reporting"], ["cargo transport", "dashboards"]))
        small.set_opt_out("far", True)
        then = [e.id for e in find_experts(small, asked, 10, snap=snap)]
        now = [e.id for e in find_experts(small, asked, 10)]
        assert then.count("bob") == 1 and "far" in then
        assert now.count("bob") == 1 and "far" not in now

    def test_compaction_keeps_results(self, small: MatchIndex) -> None:
        small.upsert(person("carla", "zeta", ["dashboards"], ["cargo transport"]))
        before = [(s.id, round(s.score, 5)) for s in small.query("alice", 10)]
        small.compact()
        assert [(s.id, round(s.score, 5)) for s in small.query("alice", 10)] == before


class TestBatch:
    def test_top_k_for_everyone_equals_single_queries(self) -> None:
        eco = generate(600, seed=3)
        ix = MatchIndex()
        ix.build(eco.profiles)
        top = top_k_all(ix, 5)
        for pid in top.ids[:80]:
            got = [s for _, s in top.of(pid)]
            want = [s.score for s in ix.query(pid, 5)]
            assert got == pytest.approx(want, abs=2e-4)  # float32 sums in another order

    def test_planted_partners_are_found(self) -> None:
        eco = generate(1000, seed=4)
        ix = MatchIndex()
        ix.build(eco.profiles)
        top = top_k_all(ix, 10)
        hits = sum(b in [i for i, _ in top.of(a)] for a, b in eco.planted.items())
        assert hits / len(eco.planted) > 0.9

    def test_candidate_graph_is_undirected_and_deduplicated(self) -> None:
        eco = generate(300, seed=5)
        ix = MatchIndex()
        ix.build(eco.profiles)
        u, v, w = candidate_graph(top_k_all(ix, 5))
        assert np.all(u < v)
        assert len(set(zip(u.tolist(), v.tolist(), strict=True))) == len(u)
        assert np.all(w > 0)
