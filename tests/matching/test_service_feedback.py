"""Declines feed back into scores: who is excluded and which partners are down-weighted."""

from services.matching.models import IntroductionRow
from services.matching.service import asker_from


def intro(
    a: str, b: str, status: str, declined_by: str | None = None, reason: str | None = None
) -> IntroductionRow:
    return IntroductionRow(
        id=f"{a}-{b}",
        eco="e",
        a=a,
        a_partner=f"{a}-co",
        b=b,
        b_partner=f"{b}-co",
        status=status,
        declined_by=declined_by,
        decline_reason=reason,
    )


class TestAskerFrom:
    def test_everyone_already_introduced_is_excluded(self) -> None:
        rows = [
            intro("me", "x", "connected"),
            intro("y", "me", "approved"),
            intro("me", "z", "rejected"),
        ]
        assert asker_from("me", rows, {}, 0.7).exclude == {"x", "y", "z"}

    def test_not_relevant_declines_weigh_down_that_partner(self) -> None:
        rows = [
            intro("me", "x", "declined", declined_by="me", reason="not_relevant"),
            intro("me", "x2", "declined", declined_by="me", reason="not_relevant"),
            intro("me", "y", "declined", declined_by="me", reason="no_capacity"),
            intro("z", "me", "declined", declined_by="z", reason="not_relevant"),
        ]
        rows[1].b_partner = "x-co"
        ctx = asker_from("me", rows, {"q": 0.5}, 0.7)
        assert ctx.penalties == {"x-co": 0.7 * 0.7}
        assert ctx.social == {"q": 0.5}
