"""The expert model refitted on forum outcomes: kept only when it ranks the newest ones better."""

from services.matching.engine import expert, learn
from services.matching.engine.refit import Reply, Thread, refit, snapshot

WORDS = ("espresso", "roasting", "kettle", "milk", "grinder")
# A prior that ignores what people helped with: it ranks by activity alone.
BLIND = learn.Model(expert.FEATURES, (0.0, 0.0, 0.0, 1.0, 0.0, 0.0), -4.0)


def forum(n: int) -> tuple[list[Thread], list[Reply]]:
    """Each subject has its one helper; askers come back with every subject in turn."""
    threads, replies = [], []
    for i in range(n):
        word = WORDS[i % len(WORDS)]
        threads.append(Thread(f"t{i}", f"a{i % 20}", i * 3600.0, f"A {word} question"))
        replies.append(Reply(f"e{i % len(WORDS)}", f"t{i}", i * 3600.0 + 60, f"{word} advice"))
    return threads, replies


class TestRefit:
    def test_outcomes_teach_what_the_prior_ignored(self) -> None:
        threads, replies = forum(90)
        got = refit([], threads, replies, 90 * 3600.0, BLIND)
        assert got.adopted and got.refit_mrr > got.prior_mrr
        assert got.model.coef[0] > 0.5  # what they helped with now counts
        assert got.outcomes > 40

    def test_a_prior_that_already_ranks_well_is_kept(self) -> None:
        threads, replies = forum(90)
        got = refit([], threads, replies, 90 * 3600.0, expert.DEFAULT)
        assert got.prior_mrr == 1.0 and not got.adopted and got.model == expert.DEFAULT

    def test_few_outcomes_keep_the_prior(self) -> None:
        threads, replies = forum(30)
        got = refit([], threads, replies, 30 * 3600.0, BLIND)
        assert not got.adopted and got.model == BLIND

    def test_the_snapshot_sees_only_the_past(self) -> None:
        threads, replies = forum(10)
        ix, favours = snapshot([], threads, replies, 5 * 3600.0)
        e0, a0 = ix.profile("e0"), ix.profile("a0")
        assert e0 is not None and a0 is not None
        assert e0.helped == ("A espresso question", "espresso advice")
        assert a0.asked == ("A espresso question",)
        assert "a5" not in ix and favours == {f"e{i}": {f"a{i}": 1.0} for i in range(5)}
