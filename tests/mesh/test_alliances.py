"""The kit's alliance projection (``mesh.alliances``) on a real database of each engine:
the highest version wins, replays and out-of-order events change nothing, and the change
says when an alliance became or stopped being active."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData

from contracts.v1.alliances import AllianceState, AllianceStatus, DirectionTerms, Sharing
from mesh.alliances import AllianceStore, Change
from mesh.db import Database

ACTIVE, PROPOSED = AllianceStatus.ACTIVE, AllianceStatus.PROPOSED
SUSPENDED, ENDED = AllianceStatus.SUSPENDED, AllianceStatus.ENDED


def state(
    version: int,
    status: AllianceStatus,
    alliance: str = "al-1",
    ecos: tuple[str, str] = ("acme", "globex"),
    a_shares: Sharing = Sharing.PEOPLE,
) -> AllianceState:
    a, b = ecos
    return AllianceState(
        alliance=alliance,
        ecosystems=[a, b],
        names={a: a.title(), b: f"{b.title()} Brand"},
        status=status,
        version=version,
        offered_by=a,
        terms={a: DirectionTerms(share=a_shares), b: DirectionTerms(share=Sharing.COMPANIES)},
        changed_at=datetime(2026, 12, 4, 12, version, tzinfo=UTC),
        changed_by="op-1",
    )


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Database, AllianceStore]]:
    metadata = MetaData()
    alliances = AllianceStore(metadata)
    db = Database(database_url, metadata)
    await db.create_all()
    try:
        yield db, alliances
    finally:
        await db.dispose()


async def record(db: Database, alliances: AllianceStore, st: AllianceState) -> Change:
    async with db.transaction() as s:
        return await alliances.record(s, st)


async def stored(db: Database, alliances: AllianceStore, alliance: str = "al-1") -> int | None:
    async with db.transaction() as s:
        found = await alliances.get(s, alliance)
    return None if found is None else found.version


async def test_the_first_state_is_kept_and_a_newer_one_replaces_it(
    store: tuple[Database, AllianceStore],
) -> None:
    db, alliances = store
    first = await record(db, alliances, state(1, PROPOSED))
    assert (first.before, first.applied) == (None, True)
    assert not first.became_active and not first.left_active
    accepted = await record(db, alliances, state(2, ACTIVE))
    assert accepted.applied and accepted.before is PROPOSED
    assert accepted.became_active and not accepted.left_active
    assert await stored(db, alliances) == 2


async def test_a_replayed_or_older_state_changes_nothing(
    store: tuple[Database, AllianceStore],
) -> None:
    db, alliances = store
    await record(db, alliances, state(3, SUSPENDED))
    for old in (state(3, SUSPENDED), state(2, ACTIVE), state(1, PROPOSED)):
        change = await record(db, alliances, old)
        assert not change.applied
        assert not change.became_active and not change.left_active
        assert change.before is SUSPENDED
    async with db.transaction() as s:
        kept = await alliances.get(s, "al-1")
        assert kept is not None and kept.status is SUSPENDED and kept.version == 3
        assert await alliances.ally(s, "acme", "globex") is None


async def test_out_of_order_delivery_ends_on_the_newest_state(
    store: tuple[Database, AllianceStore],
) -> None:
    db, alliances = store
    ended = await record(db, alliances, state(4, ENDED))  # the newest arrives first
    assert ended.applied and ended.before is None and not ended.left_active
    for late in (state(2, ACTIVE), state(3, SUSPENDED), state(1, PROPOSED)):
        assert not (await record(db, alliances, late)).applied
    async with db.transaction() as s:
        assert await alliances.allies(s, "acme") == []
        assert [st.version for st in await alliances.involving(s, "globex")] == [4]


async def test_leaving_active_and_coming_back_are_reported_once(
    store: tuple[Database, AllianceStore],
) -> None:
    db, alliances = store
    await record(db, alliances, state(1, PROPOSED))
    assert (await record(db, alliances, state(2, ACTIVE))).became_active
    suspended = await record(db, alliances, state(3, SUSPENDED))
    assert suspended.left_active and not suspended.became_active
    assert not (await record(db, alliances, state(3, SUSPENDED))).left_active  # replay
    resumed = await record(db, alliances, state(4, ACTIVE))
    assert resumed.became_active and not resumed.left_active
    ended = await record(db, alliances, state(5, ENDED))
    assert ended.left_active
    # From proposed straight to ended: it never was active, nothing to purge.
    await record(db, alliances, state(1, PROPOSED, alliance="al-2", ecos=("acme", "initech")))
    withdrawn = await record(
        db, alliances, state(2, ENDED, alliance="al-2", ecos=("acme", "initech"))
    )
    assert withdrawn.applied and not withdrawn.left_active and not withdrawn.became_active


async def test_allies_are_the_active_alliances_seen_from_each_side(
    store: tuple[Database, AllianceStore],
) -> None:
    db, alliances = store
    await record(db, alliances, state(2, ACTIVE, a_shares=Sharing.PEOPLE))
    await record(db, alliances, state(1, ACTIVE, alliance="al-2", ecos=("acme", "contoso")))
    await record(db, alliances, state(1, PROPOSED, alliance="al-3", ecos=("initech", "acme")))
    await record(db, alliances, state(1, SUSPENDED, alliance="al-4", ecos=("acme", "hooli")))
    async with db.transaction() as s:
        seen_by_acme = await alliances.allies(s, "acme")
        assert [a.eco for a in seen_by_acme] == ["contoso", "globex"]  # ordered by id
        globex = await alliances.ally(s, "acme", "globex")
        assert globex is not None and globex.name == "Globex Brand"
        # From acme: globex shares companies with acme, acme shares people with globex.
        assert globex.shares.share is Sharing.COMPANIES
        assert globex.receives.share is Sharing.PEOPLE
        acme = await alliances.ally(s, "globex", "acme")
        assert acme is not None and acme.name == "Acme"
        assert acme.shares.shares_people() and not acme.receives.shares_people()
        for other in ("initech", "hooli", "nobody", "acme"):
            assert await alliances.ally(s, "acme", other) is None
        assert await alliances.allies(s, "initech") == []
        assert len(await alliances.involving(s, "acme")) == 4
