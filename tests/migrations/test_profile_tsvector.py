"""Revision 0005 of the profile history: PostgreSQL's directory reads a stored tsvector.

The index rows written before the upgrade are found after it, the same rows in the same
relevance order as the expression index found them; SQLite's FTS5 table is untouched."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from deploy.migrations import history
from mesh.migrate import State, differences, upgrade
from services.profile import models as profile_models
from services.profile.search_repository import SearchSpec, search

WHEN = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)
# Index text as the directory writes it (folded stems); names in the opposite order of
# relevance, so a search that did not rank would give another order.
DOCS = {
    "ann": "zed ann cold chain logist cold chain audit cold storag",
    "bob": "yan bob cold chain logist",
    "cat": "xu cat chain store cold press",
    "dan": "wu dan machin tool",
}
# The expression the index had before 0005, and how 0004's code matched and ranked with it.
OLD = "to_tsvector('simple'::regconfig, text)"
OLD_SEARCH = (
    f"SELECT entry FROM search_docs WHERE {OLD} @@ to_tsquery('simple'::regconfig, :q) "
    f"ORDER BY ts_rank({OLD}, to_tsquery('simple'::regconfig, :q)) DESC, name_key, entry"
)


async def fill(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for entry, doc in DOCS.items():
            row = await conn.execute(
                profile_models.search_docs.insert()
                .values(
                    eco="acme",
                    kind="person",
                    entry=entry,
                    tier="ecosystem",
                    partner="acme-corp",
                    person=entry,
                    name=doc.split()[0].title(),
                    name_key=doc.split()[0],
                    verified=False,
                    updated_at=WHEN,
                    text=doc,
                    summary={},
                )
                .returning(profile_models.search_docs.c.id)
            )
            if conn.dialect.name == "sqlite":
                await conn.execute(
                    text("INSERT INTO search_fts (rowid, text) VALUES (:id, :text)"),
                    {"id": row.scalar_one(), "text": doc},
                )


async def found(engine: AsyncEngine, tokens: list[str], sort: str) -> list[str]:
    spec = SearchSpec(
        eco="acme",
        kind="person",
        viewer="someone",
        viewer_partner="other-corp",
        own_company_tier="company",
        tokens=tokens,
        facets=[],
        partner=None,
        verified=None,
        sort=sort,
        offset=0,
        limit=10,
    )
    async with AsyncSession(engine) as session:
        _total, _exact, rows = await search(session, spec)
    return [row.entry for row in rows]


async def tsv_schema(engine: AsyncEngine) -> tuple[list[str], dict[str, str]]:
    """(generated columns of search_docs, its indexes' definitions by name)."""
    async with engine.connect() as conn:
        generated = (
            await conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = "
                    "'search_docs' AND is_generated = 'ALWAYS'"
                )
            )
        ).scalars()
        indexes = await conn.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'search_docs'")
        )
        return list(generated), {name: definition for name, definition in indexes.all()}


class TestStoredTsvector:
    async def test_rows_found_before_the_upgrade_are_found_after_it(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        profile = history("profile")
        await upgrade(database_url, profile, "0004")
        await fill(engine)
        postgres = engine.dialect.name == "postgresql"
        if postgres:  # what 0004's expression index found, in its relevance order
            async with engine.connect() as conn:
                before = {
                    q: list((await conn.execute(text(OLD_SEARCH), {"q": q})).scalars())
                    for q in ("cold & chain:*", "chain:*", "machin:*", "nothing:*")
                }
            assert before["cold & chain:*"] == ["ann", "bob", "cat"]
            assert (await tsv_schema(engine))[0] == []
        done = await upgrade(database_url, profile)
        assert done.applied[0] == "0005" and done.state is State.CURRENT  # and what follows
        assert await differences(database_url, profile) == []
        after = {
            "cold & chain:*": await found(engine, ["cold", "chain"], "relevance"),
            "chain:*": await found(engine, ["chain"], "relevance"),
            "machin:*": await found(engine, ["machin"], "relevance"),
            "nothing:*": await found(engine, ["nothing"], "relevance"),
        }
        assert after["cold & chain:*"] == ["ann", "bob", "cat"]
        assert after["machin:*"] == ["dan"] and after["nothing:*"] == []
        # Name order does not rank: the same rows, by name.
        assert await found(engine, ["cold", "chain"], "name") == ["cat", "bob", "ann"]
        if postgres:
            assert after == before
            generated, indexes = await tsv_schema(engine)
            assert generated == ["tsv"]
            assert "USING gin (tsv)" in indexes["ix_search_tsv"]
            assert "to_tsvector" not in indexes["ix_search_tsv"]
        else:
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
                cols = await conn.run_sync(
                    lambda c: {col["name"] for col in inspect(c).get_columns("search_docs")}
                )
            assert "search_fts" in names and "tsv" not in cols

    async def test_rows_written_after_the_upgrade_get_their_vector(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        """The column is generated: writers (the service, the bench loader) never name it."""
        await upgrade(database_url, history("profile"))
        await fill(engine)
        assert await found(engine, ["cold", "chain"], "relevance") == ["ann", "bob", "cat"]
        assert await found(engine, ["cold", "stor"], "recent") == ["cat", "ann"]
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                vector = (
                    await conn.execute(
                        text("SELECT tsv::text FROM search_docs WHERE entry = 'dan'")
                    )
                ).scalar_one()
            assert vector == "'dan':2 'machin':3 'tool':4 'wu':1"
