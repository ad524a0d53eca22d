"""The index can be rebuilt from scratch, and every replica follows the change log."""

from contracts.v1.collaboration import ContentCreated, ContentData
from mesh.db import Database
from services.matching import models
from services.matching.rebuild import rebuild
from services.matching.settings import MatchingSettings
from services.matching.store import IndexStore
from tests.matching.conftest import PEOPLE, until


class TestRebuild:
    async def test_replay_rederives_profiles_and_ties(self, seeded, nats_url, database_url):
        data = ContentData(
            content_id="c9",
            kind="post",
            author="carol",
            author_partner="east",
            thread="t9",
            text="hello @dave",
            mentions=["dave"],
        )
        await seeded.publish(ContentCreated(ecosystem=seeded.eco, data=data))
        await until(lambda: "dave" in seeded.svc.store.eco(seeded.eco).social.adj.get("carol", {}))
        settings = MatchingSettings(
            nats_url=nats_url, database_url=database_url, environment="test"
        )
        stats = await rebuild(settings, with_replay=True)
        assert stats["replayed_events"] >= len(PEOPLE) + 1
        assert stats["people"] >= len(PEOPLE)
        # The running service sees the rebuild marker and rebuilds its own index.
        await seeded.svc.store.sync()
        eco = seeded.svc.store.eco(seeded.eco)
        assert len(eco.people) == len(PEOPLE)
        assert eco.social.adj["carol"]["dave"] == 1.0  # replayed once, not doubled

    async def test_plain_rebuild_from_database(self, seeded, nats_url, database_url):
        settings = MatchingSettings(
            nats_url=nats_url, database_url=database_url, environment="test"
        )
        stats = await rebuild(settings, with_replay=False)
        assert stats["people"] == len(PEOPLE) and stats["replayed_events"] is None


class TestReplicas:
    async def test_a_second_replica_follows_changes(self, seeded, database_url):
        db = Database(database_url, models.metadata)
        try:
            other = IndexStore(db)
            await other.rebuild()
            assert len(other.eco(seeded.eco).people) == len(PEOPLE)
            await seeded.person("zoe", "east", ["haulage"], ["dashboards"])
            await until(lambda: "zoe" in seeded.svc.store.eco(seeded.eco).people)
            assert "zoe" not in other.eco(seeded.eco).people
            # The service updates its own index inside the event's transaction, so the
            # change row may be committed a moment after "zoe" shows there.
            synced = 0

            async def other_synced() -> bool:
                nonlocal synced
                synced += await other.sync()
                return synced >= 1

            await until(other_synced)
            assert other.eco(seeded.eco).people.profile("zoe").needs == ("haulage",)
        finally:
            await db.dispose()
