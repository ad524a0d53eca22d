"""The index can be rebuilt from scratch, and every replica follows the change log."""

import time

import pytest

from contracts.v1.collaboration import ContentCreated, ContentData
from mesh.db import Database
from services.matching import handlers, models
from services.matching.rebuild import rebuild
from services.matching.service import Matching
from services.matching.settings import MatchingSettings
from services.matching.store import IndexStore
from tests.matching.conftest import PEOPLE, Mesh, until
from tests.support.services import run_service
from tests.support.tokens import TestKeys


class TestRebuild:
    async def test_replay_rederives_profiles_and_ties(
        self, seeded: Mesh, nats_url: str, database_url: str
    ) -> None:
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

    async def test_plain_rebuild_from_database(
        self, seeded: Mesh, nats_url: str, database_url: str
    ) -> None:
        settings = MatchingSettings(
            nats_url=nats_url, database_url=database_url, environment="test"
        )
        stats = await rebuild(settings, with_replay=False)
        assert stats["people"] == len(PEOPLE) and stats["replayed_events"] is None


class TestReplicas:
    async def test_a_second_replica_follows_changes(self, seeded: Mesh, database_url: str) -> None:
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
            zoe = other.eco(seeded.eco).people.profile("zoe")
            assert zoe is not None
            assert zoe.needs == ("haulage",)
        finally:
            await db.dispose()


class TestHelpGivenPersists:
    async def test_help_survives_a_restart_and_reaches_other_replicas(
        self, seeded: Mesh, nats_url: str, database_url: str, test_keys: TestKeys
    ) -> None:
        db = Database(database_url, models.metadata)
        try:
            other = IndexStore(db)
            await other.rebuild()
            assert other.eco(seeded.eco).people.activity.get("dave", 0.0) == 0.0

            def post(content: str, mentions: list[str]) -> ContentCreated:
                data = ContentData(
                    content_id=content,
                    kind="post",
                    author="dave",
                    author_partner="south",
                    thread="t1",
                    text="here is how",
                    mentions=mentions,
                )
                return ContentCreated(ecosystem=seeded.eco, data=data)

            for i in range(3):
                await seeded.publish(post(f"p{i}", []))
            live = seeded.svc.store.eco(seeded.eco)
            await until(lambda: live.people.activity.get("dave", 0.0) > 2.5)
            # The same post again (a retried event, new event id): its tie to erin shows
            # the handler ran, and the help it gave is not counted twice.
            await seeded.publish(post("p0", ["erin"]))
            await until(lambda: "erin" in live.social.adj.get("dave", {}))

            synced = 0

            async def other_synced() -> bool:
                nonlocal synced
                synced += await other.sync()
                return other.eco(seeded.eco).people.activity.get("dave", 0.0) > 2.5

            await until(other_synced)  # a running replica follows the help given
            assert other.eco(seeded.eco).people.activity["dave"] <= 3.0
            assert other.eco(seeded.eco).people.activity.get("carol", 0.0) == 0.0
        finally:
            await db.dispose()

        # A restart: a new service process on the same database keeps the prior.
        holder: dict[str, Matching] = {}

        def register(rt) -> None:  # type: ignore[no-untyped-def]
            holder["svc"] = handlers.register(rt)

        async with run_service(
            "matching",
            MatchingSettings,
            models.metadata,
            register,
            nats_url=nats_url,
            database_url=database_url,
            verifier=test_keys.verifier(),
        ):
            restarted = holder["svc"].store
            await until(lambda: seeded.eco in restarted.ecos)
            value = restarted.eco(seeded.eco).people.activity.get("dave", 0.0)
            assert 2.5 < value <= 3.0
            assert restarted.eco(seeded.eco).helped.value("dave", time.time()) == pytest.approx(
                value
            )
