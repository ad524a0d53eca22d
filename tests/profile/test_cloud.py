"""Tag clouds from collaboration events: distinctive terms, visibility, idempotent updates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from contracts.claims import Role
from contracts.v1 import profile as c
from contracts.v1.collaboration import ContentCreated, ContentData, ContentEdited, ContentHidden
from mesh.runtime import ServiceRuntime
from services.profile.models import cloud_terms, content_terms, contents, corpus_terms
from tests.profile.conftest import Eco

COMMON = "Quick project update for our partner meeting next week."
CORPUS = {
    "anna": [
        "Our refrigerated trucks keep the cold chain intact. Cold chain audits every month.",
        "Temperature logging on every refrigerated pallet: the cold chain never breaks.",
        "Pharma customers ask about cold chain certification and refrigerated storage.",
    ],
    "noah": ["Cross-docking in Rotterdam cut our dwell times.", "Customs brokerage in Rotterdam."],
    "carl": ["Injection moulding tolerances for automotive parts.", "CNC machining capacity."],
    "cleo": ["Welding robots on the automotive line.", "Lean manufacturing workshops."],
    "fred": ["Demand forecasting models with gradient boosting.", "Dashboards for forecasting."],
}


def content(
    eco: Eco,
    cid: str,
    author: str,
    partner: str,
    text: str,
    *,
    cls: type[ContentCreated | ContentEdited | ContentHidden] = ContentCreated,
    title: str = "",
    workspace: str | None = None,
    audience: Iterable[str] = (),
    hidden: bool = False,
    time: datetime | None = None,
) -> ContentCreated | ContentEdited | ContentHidden:
    data = ContentData(
        content_id=cid,
        kind="note" if workspace else "post",
        author=author,
        author_partner=partner,
        workspace=workspace,
        audience_partners=list(audience),
        title=title,
        text=text,
        hidden=hidden,
    )
    extra: dict[str, Any] = {"time": time} if time else {}
    return cls(ecosystem=eco.name, partner=partner, data=data, **extra)


async def _corpus(eco: Eco) -> None:
    partners = {
        "anna": "northwind",
        "noah": "northwind",
        "carl": "contoso",
        "cleo": "contoso",
        "fred": "fabrikam",
    }
    for who, partner in partners.items():
        await eco.register(who, partner, Role.MEMBER)
    for who, posts in CORPUS.items():
        for i, text in enumerate(posts):
            await eco.publish(content(eco, f"{who}-{i}", who, partners[who], text))
            await eco.publish(content(eco, f"{who}-common-{i}", who, partners[who], COMMON))
    await eco.settle()


def terms(card: c.Card | c.CompanyCard) -> dict[str, float]:
    return {t.term: t.weight for t in card.cloud.terms}


async def _state(rt: ServiceRuntime, eco: Eco) -> list[Any]:
    async with rt.db.engine.connect() as conn:
        out = []
        for table in (cloud_terms, corpus_terms, content_terms, contents):
            query = select(table).where(table.c.eco == eco.name)
            rows = await conn.execute(query.order_by(*table.primary_key.columns))
            out.append([tuple(r) for r in rows])
        return out


class TestDistinctiveTerms:
    async def test_distinctive_terms_rise_and_common_words_do_not(self, eco: Eco) -> None:
        await _corpus(eco)
        card = await eco.call(c.PERSON_CARD, "fred", person="anna", limit=8)
        weights = terms(card)
        top = [t.term for t in card.cloud.terms[:3]]
        assert "cold chain" in top
        assert "refrigerated" in weights
        for common in ("project", "partner", "meeting", "update"):
            assert weights.get(common, 0) < weights["cold chain"] / 3, common
        assert card.cloud.posts == 6  # three own posts and three common ones
        cold = next(t for t in card.cloud.terms if t.term == "cold chain")
        assert cold.posts == 3
        # stop words never show, and phrases cover their words
        assert not {"the", "our", "every", "cold", "chain"} & set(weights)

    async def test_each_persons_cloud_is_their_own(self, eco: Eco) -> None:
        await _corpus(eco)
        fred = terms(await eco.call(c.PERSON_CARD, "anna", person="fred"))
        assert "forecasting" in fred and "cold chain" not in fred

    async def test_company_cloud_sums_its_people(self, eco: Eco) -> None:
        await _corpus(eco)
        card = await eco.call(c.COMPANY_CARD, "fred", partner="northwind", limit=30)
        found = terms(card)
        assert "cold chain" in found and "rotterdam" in found and "welding" not in found
        assert card.cloud.posts == 10


class TestVisibility:
    async def test_workspace_writing_only_for_its_audience(self, eco: Eco) -> None:
        await _corpus(eco)
        note = "Blockchain provenance pilot. Blockchain provenance ledger for pallets."
        await eco.publish(
            content(
                eco,
                "ws-1",
                "anna",
                "northwind",
                note,
                workspace="w1",
                audience=["northwind", "contoso"],
            )
        )
        await eco.settle()
        for viewer, sees in (("anna", True), ("noah", True), ("cleo", True), ("fred", False)):
            card = await eco.call(c.PERSON_CARD, viewer, person="anna", limit=30)
            assert ("blockchain provenance" in terms(card)) is sees, viewer
            assert card.cloud.posts == (7 if sees else 6), viewer

    async def test_hidden_content_never_counts(self, eco: Eco) -> None:
        await _corpus(eco)
        await eco.publish(content(eco, "spam", "anna", "northwind", "Cheap watches cheap watches"))
        await eco.settle()
        assert "cheap watches" in terms(await eco.call(c.PERSON_CARD, "fred", person="anna"))
        await eco.publish(
            content(
                eco,
                "spam",
                "anna",
                "northwind",
                "Cheap watches cheap watches",
                cls=ContentHidden,
                hidden=True,
            )
        )
        await eco.settle()
        for viewer in ("anna", "fred"):
            card = await eco.call(c.PERSON_CARD, viewer, person="anna", limit=50)
            assert not {"cheap", "watches", "cheap watches"} & set(terms(card))
            assert card.cloud.posts == 6

    async def test_private_profile_fields_stay_out_of_others_clouds(self, eco: Eco) -> None:
        await _corpus(eco)
        await eco.call(
            c.UPDATE_PERSON,
            "anna",
            person="anna",
            interests=["Sailing regattas"],
            visibility={"interests": "private"},
        )
        assert "sailing" in terms(await eco.call(c.PERSON_CARD, "anna", person="anna", limit=50))
        assert "sailing" not in terms(
            await eco.call(c.PERSON_CARD, "noah", person="anna", limit=50)
        )


class TestIncrementalUpdates:
    async def test_edits_replace_what_a_post_contributed(self, eco: Eco) -> None:
        await _corpus(eco)
        await eco.publish(
            content(
                eco,
                "anna-0",
                "anna",
                "northwind",
                "Drone inspections of drone hangars.",
                cls=ContentEdited,
            )
        )
        await eco.settle()
        found = terms(await eco.call(c.PERSON_CARD, "fred", person="anna", limit=50))
        assert "drone" in found and "audits" not in found

    async def test_an_older_event_does_not_undo_a_newer_state(self, eco: Eco) -> None:
        await _corpus(eco)
        old = datetime.now(UTC) - timedelta(hours=1)
        await eco.publish(
            content(
                eco,
                "anna-0",
                "anna",
                "northwind",
                "Obsolete wording here.",
                cls=ContentEdited,
                time=old,
            )
        )
        await eco.settle()
        assert "obsolete wording" not in terms(
            await eco.call(c.PERSON_CARD, "fred", person="anna", limit=50)
        )

    async def test_events_replayed_twice_change_nothing(
        self, eco: Eco, profile: ServiceRuntime
    ) -> None:
        await _corpus(eco)
        edit = content(
            eco, "anna-1", "anna", "northwind", "Temperature logging, again.", cls=ContentEdited
        )
        hide = content(eco, "noah-1", "noah", "northwind", "x", cls=ContentHidden, hidden=True)
        for event in (edit, hide):
            await eco.publish(event)
        await eco.settle()
        before = await _state(profile, eco)
        cards = [await eco.call(c.PERSON_CARD, v, person="anna") for v in ("anna", "fred")]
        for _ in range(2):
            for event in (edit, hide):
                await eco.publish(event, dedupe=False)  # the same envelope again
                await eco.publish(event.model_copy(update={"id": f"{event.id}-re"}), dedupe=False)
            await eco.settle()
        assert await _state(profile, eco) == before
        again = [await eco.call(c.PERSON_CARD, v, person="anna") for v in ("anna", "fred")]
        assert again == cards
