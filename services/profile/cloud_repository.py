"""Queries behind tag clouds: content terms, per-owner sums and ecosystem document frequencies.

Sums change by atomic upserts (``INSERT … ON CONFLICT DO UPDATE``, on SQLite and
PostgreSQL alike), so request handlers and event consumers may touch the same
rows concurrently.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, Table, and_, delete, exists, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.profile.models import (
    cloud_terms,
    content_audience,
    content_terms,
    contents,
    corpus_terms,
)

# The row whose df (corpus_terms) or posts (cloud_terms) counts documents, not a term.
DOCS = ""
Term = tuple[str, str, int]  # (term, surface, tf)


async def _add(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], sums: tuple[str, ...]
) -> None:
    """Add ``rows``' ``sums`` columns onto existing rows (insert missing ones)."""
    if not rows:
        return
    dialect = session.bind.dialect.name  # type: ignore[union-attr]
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    keys = [c.name for c in table.primary_key.columns]
    changes = {c: table.c[c] + stmt.excluded[c] for c in sums}
    if "surface" in table.c:
        changes["surface"] = stmt.excluded.surface
    for chunk in range(0, len(rows), 500):
        await session.execute(
            stmt.on_conflict_do_update(index_elements=keys, set_=changes),
            rows[chunk : chunk + 500],
        )


async def get_content(session: AsyncSession, eco: str, content_id: str) -> Row[Any] | None:
    query = select(contents).where(contents.c.eco == eco, contents.c.content_id == content_id)
    return (await session.execute(query)).first()


async def save_content(session: AsyncSession, exists_: bool, **values: Any) -> None:
    key = and_(contents.c.eco == values["eco"], contents.c.content_id == values["content_id"])
    if exists_:
        await session.execute(contents.update().where(key).values(**values))
    else:
        await session.execute(insert(contents).values(**values))


async def replace_audience(
    session: AsyncSession, eco: str, content_id: str, partners: Iterable[str], stored: bool = True
) -> None:
    """Set the content's audience; ``stored`` False: it has none yet (nothing to delete)."""
    a = content_audience.c
    if stored:
        await session.execute(
            delete(content_audience).where(a.eco == eco, a.content_id == content_id)
        )
    rows = [{"eco": eco, "content_id": content_id, "partner": p} for p in sorted(set(partners))]
    if rows:
        await session.execute(insert(content_audience), rows)


async def terms_of(session: AsyncSession, eco: str, content_id: str) -> list[Term]:
    t = content_terms.c
    query = select(t.term, t.surface, t.tf).where(t.eco == eco, t.content_id == content_id)
    return [(r.term, r.surface, r.tf) for r in await session.execute(query)]


async def replace_terms(
    session: AsyncSession, eco: str, content_id: str, terms: list[Term], stored: bool = True
) -> None:
    """Set the content's terms; ``stored`` False: it has none yet (nothing to delete)."""
    t = content_terms.c
    if stored:
        await session.execute(delete(content_terms).where(t.eco == eco, t.content_id == content_id))
    rows = [
        {"eco": eco, "content_id": content_id, "term": k, "surface": s, "tf": n}
        for k, s, n in terms
    ]
    for chunk in range(0, len(rows), 500):
        await session.execute(insert(content_terms), rows[chunk : chunk + 500])


async def add_to_clouds(
    session: AsyncSession, eco: str, owners: list[tuple[str, str]], terms: list[Term], sign: int
) -> None:
    """Add (sign=1) or remove (sign=-1) one document's terms from its owners' sums."""
    rows = [
        {
            "eco": eco,
            "owner_kind": kind,
            "owner": owner,
            "term": k,
            "surface": s,
            "tf": sign * n,
            "posts": sign,
        }
        for kind, owner in owners
        for k, s, n in sorted([*terms, (DOCS, "", 1)])  # one lock order for every writer
    ]
    await _add(session, cloud_terms, rows, ("tf", "posts"))
    if sign < 0:
        c = cloud_terms.c
        for kind, owner in owners:
            await session.execute(
                delete(cloud_terms).where(
                    c.eco == eco, c.owner_kind == kind, c.owner == owner, c.tf <= 0
                )
            )


async def add_to_corpus(session: AsyncSession, eco: str, terms: Iterable[str], sign: int) -> None:
    """Count one public document in (sign=1) or out of (sign=-1) the ecosystem corpus."""
    keys = sorted({*terms, DOCS})
    rows = [{"eco": eco, "term": k, "df": sign} for k in keys]
    await _add(session, corpus_terms, rows, ("df",))
    if sign < 0:
        c = corpus_terms.c
        for chunk in range(0, len(keys), 500):
            await session.execute(
                delete(corpus_terms).where(
                    c.eco == eco, c.term.in_(keys[chunk : chunk + 500]), c.df <= 0
                )
            )


async def cloud_sums(session: AsyncSession, eco: str, kind: str, owner: str) -> list[Any]:
    c = cloud_terms.c
    query = select(c.term, c.surface, c.tf, c.posts).where(
        c.eco == eco, c.owner_kind == kind, c.owner == owner
    )
    return list((await session.execute(query)).all())


def _owned(kind: str, owner: str) -> Any:
    return contents.c.author == owner if kind == "person" else contents.c.author_partner == owner


async def workspace_terms(
    session: AsyncSession, eco: str, kind: str, owner: str, viewer_partner: str | None
) -> list[Any]:
    """Terms of the owner's unhidden workspace writing whose audience includes the viewer."""
    if viewer_partner is None:
        return []
    c, t, a = contents.c, content_terms.c, content_audience.c
    audience = exists().where(
        a.eco == c.eco, a.content_id == c.content_id, a.partner == viewer_partner
    )
    visible = select(c.content_id).where(
        c.eco == eco, _owned(kind, owner), c.hidden.is_(False), c.workspace.is_not(None), audience
    )
    ids = list((await session.execute(visible)).scalars())
    if not ids:  # the common case: look no further
        return []
    query = select(t.content_id, t.term, t.surface, t.tf).where(t.eco == eco, t.content_id.in_(ids))
    return list((await session.execute(query)).all())


async def document_frequencies(
    session: AsyncSession, eco: str, terms: Iterable[str]
) -> dict[str, int]:
    keys = sorted({*terms, DOCS})
    c = corpus_terms.c
    found: dict[str, int] = {}
    for chunk in range(0, len(keys), 500):
        query = select(c.term, c.df).where(c.eco == eco, c.term.in_(keys[chunk : chunk + 500]))
        found.update({r.term: r.df for r in await session.execute(query)})
    return found
