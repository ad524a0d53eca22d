"""Directory index queries: SQLite FTS5 and PostgreSQL full text behind one function.

Both engines index the same analyzed text (folded Snowball stems, see
``text.index_text``) and are queried with the same tokens, so they match the
same rows; relevance is BM25 on SQLite and ``ts_rank`` on PostgreSQL, with the
same tie-breakers (name, then id). PostgreSQL matches and ranks on the stored vector
``search_docs.tsv`` (the models' DDL), so no row's text is parsed at query time; only a
search in relevance order ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.profile import Visibility
from services.profile.models import connections_across, search_docs, search_facets
from services.profile.repository import connections_of, partners_connected_to
from services.profile.visibility import ALLIED_TIERS

d = search_docs.c
f = search_facets.c
COUNT_CAP = 1000  # matches counted past the requested page (then the total is a floor)
HITS = "SELECT rowid AS id, 0.0 AS score FROM search_fts WHERE search_fts MATCH :fts"
RANKED_HITS = (
    "SELECT rowid AS id, -bm25(search_fts) AS score FROM search_fts WHERE search_fts MATCH :fts"
)


@dataclass(frozen=True)
class TierDoc:
    """One row of the index: what a viewer of ``tier`` may find and see of an entry."""

    tier: str
    text: str
    summary: dict[str, Any]
    facets: list[tuple[str, str]]


@dataclass(frozen=True)
class SearchSpec:
    eco: str
    kind: str
    viewer: str
    viewer_partner: str | None
    own_company_tier: str
    tokens: list[str]
    facets: list[tuple[str, str]]
    partner: str | None
    verified: bool | None
    sort: str
    offset: int
    limit: int
    allied: tuple[str, ...] = ()  # allied ecosystems sharing this kind: their allied tiers


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name  # type: ignore[union-attr]


async def replace_entry(
    session: AsyncSession,
    eco: str,
    kind: str,
    entry: str,
    common: dict[str, Any],
    docs: list[TierDoc],
) -> None:
    """Drop an entry's index rows and write ``docs`` (one per tier) in their place."""
    ids = list(
        (
            await session.execute(
                select(d.id).where(d.eco == eco, d.kind == kind, d.entry == entry)
            )
        ).scalars()
    )
    sqlite = _dialect(session) == "sqlite"
    if ids:
        await session.execute(delete(search_facets).where(f.doc_id.in_(ids)))
        await session.execute(delete(search_docs).where(d.id.in_(ids)))
        if sqlite:
            stmt = text("DELETE FROM search_fts WHERE rowid IN :ids").bindparams(
                bindparam("ids", expanding=True)
            )
            await session.execute(stmt, {"ids": ids})
    for doc in docs:
        row = await session.execute(
            insert(search_docs)
            .values(
                eco=eco,
                kind=kind,
                entry=entry,
                tier=doc.tier,
                text=doc.text,
                summary=doc.summary,
                **common,
            )
            .returning(d.id)
        )
        doc_id = row.scalar_one()
        if sqlite:
            await session.execute(
                text("INSERT INTO search_fts (rowid, text) VALUES (:id, :text)"),
                {"id": doc_id, "text": doc.text},
            )
        if doc.facets:
            await session.execute(
                insert(search_facets),
                [{"doc_id": doc_id, "facet": k, "value": v} for k, v in set(doc.facets)],
            )


def _tier(spec: SearchSpec) -> ColumnElement[Any]:
    """The one index row per entry that this viewer reads: the viewer's tier towards it."""
    if spec.kind == "person":
        return case(
            (d.person == spec.viewer, literal("private")),
            (d.partner == spec.viewer_partner, literal("company")),
            (d.person.in_(connections_of(spec.eco, spec.viewer)), literal("connections")),
            else_=literal("ecosystem"),
        )
    return case(
        (d.partner == spec.viewer_partner, literal(spec.own_company_tier)),
        (d.partner.in_(partners_connected_to(spec.eco, spec.viewer)), literal("connections")),
        else_=literal("ecosystem"),
    )


def _match(session: AsyncSession, tokens: list[str], rank: bool) -> tuple[Any, ColumnElement[Any]]:
    """(a where-clause matching all tokens, the last as a prefix; a relevance score, or a
    constant when ``rank`` is false: a search in name or date order does not rank)."""
    if _dialect(session) == "sqlite":
        fts_query = " ".join([*tokens[:-1], tokens[-1] + "*"])
        hits = text(RANKED_HITS if rank else HITS).bindparams(fts=fts_query)
        sub = hits.columns(id=Integer, score=Float).subquery()
        return sub, sub.c.score
    # The stored ``to_tsvector('simple', text)`` (models: the generated column ``tsv``):
    # matching and ranking read it instead of parsing each matching row's text again.
    vector: ColumnElement[Any] = literal_column(f"{search_docs.name}.tsv")
    ts_query = " & ".join([*tokens[:-1], tokens[-1] + ":*"])
    query = func.to_tsquery(literal_column("'simple'::regconfig"), ts_query)
    rank_of: ColumnElement[Any] = func.ts_rank(vector, query) if rank else literal(0.0)
    return vector.op("@@")(query), rank_of


def _narrower(spec: SearchSpec) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Two disjoint sets of the few entries this viewer sees in a narrower tier than
    ``ecosystem``: the viewer's company's, and the viewer's own and connections' beyond it.
    Each is an equality or an ``IN`` an index serves (entry, partner)."""
    colleagues = d.partner == spec.viewer_partner
    if spec.kind == "person":
        mine = union(select(literal(spec.viewer)), connections_of(spec.eco, spec.viewer))
        return colleagues, and_(d.entry.in_(mine), d.partner != spec.viewer_partner)
    connected = d.partner.in_(partners_connected_to(spec.eco, spec.viewer))
    return colleagues, and_(connected, d.partner != spec.viewer_partner)


def _connected_across(spec: SearchSpec) -> ColumnElement[bool]:
    """The index row's entry is connected with the viewer across an alliance."""
    x = connections_across.c
    other = x.other == d.entry if spec.kind == "person" else x.other_partner == d.partner
    return exists().where(x.eco == spec.eco, x.person == spec.viewer, x.other_eco == d.eco, other)


def _allied(
    spec: SearchSpec, ecos: Sequence[ColumnElement[bool]]
) -> list[tuple[ColumnElement[bool], ColumnElement[bool]]]:
    """(ecosystems, tier) of the allied branches, for each of ``ecos``: the allied
    ecosystems' rows of the ``allied`` tier, and of ``allied_conn`` for the entries
    connected with the viewer across. Rows of these tiers exist only for entries that
    flagged a field for allies, and hold only those fields."""
    wide, connected = ALLIED_TIERS
    across = _connected_across(spec)
    pairs: list[tuple[ColumnElement[bool], ColumnElement[bool]]] = []
    for eco in ecos:
        pairs.append((eco, and_(d.tier == wide, not_(across))))
        pairs.append((eco, and_(d.tier == connected, across)))
    return pairs


def _branch(
    session: AsyncSession,
    spec: SearchSpec,
    tier: ColumnElement[bool],
    ecos: ColumnElement[bool] | None = None,
) -> Select[Any]:
    """The matching index rows of one viewer tier (``tier`` selects which rows) of the
    viewer's ecosystem, or of ``ecos``."""
    score: ColumnElement[Any] = literal(0.0)
    query = select(
        d.entry, d.eco, d.name, d.partner, d.verified, d.summary, d.name_key, d.updated_at
    )
    eco = d.eco == spec.eco if ecos is None else ecos
    where: list[Any] = [eco, d.kind == spec.kind, tier]
    if spec.tokens:
        match, score = _match(session, spec.tokens, spec.sort == "relevance")
        if hasattr(match, "c"):  # SQLite: join the FTS hits
            query = query.join(match, match.c.id == d.id)
        else:
            where.append(match)
    for facet, value in spec.facets:
        where.append(exists().where(f.doc_id == d.id, f.facet == facet, f.value == value))
    if spec.partner is not None:
        where.append(d.partner == spec.partner)
    if spec.verified is not None:
        where.append(d.verified == spec.verified)
    return query.add_columns(score.label("score")).where(and_(*where))


async def search(session: AsyncSession, spec: SearchSpec) -> tuple[int, bool, list[Any]]:
    """(matches counted, whether that count is exact, the requested page of index rows).

    Each entry is read in the viewer's own tier. Almost every entry is seen in the
    ``ecosystem`` tier: that branch is a plain equality the (eco, kind, tier, name_key)
    index serves in name order, and the few entries the viewer sees more of (their own,
    colleagues', connections') are two more, small branches. With words, the full-text
    index drives instead, each hit's tier checked on it: for the count, and for a page in
    relevance or date order (every match is ranked or sorted anyway); on PostgreSQL a page
    in name order is read tier by tier, stopping at its end (a common word matches most
    rows). Counting stops ``COUNT_CAP`` matches past the page: beyond it, the total says
    "at least". Allied ecosystems (``spec.allied``) add their allied tiers' rows as more
    branches of the same query, so totals, sorting and pages run across all of them."""
    colleagues, others = _narrower(spec)
    by_tier = [
        _branch(
            session,
            spec,
            and_(d.tier == Visibility.ECOSYSTEM.value, not_(or_(colleagues, others))),
        ),
        _branch(session, spec, and_(colleagues, d.tier == _tier(spec))),
        _branch(session, spec, and_(others, d.tier == _tier(spec))),
    ]
    # Allied ecosystems: read in name order one ecosystem at a time (an equality the
    # name index serves), or, driven by full-text hits, all in one branch.
    each = [d.eco == eco for eco in spec.allied]
    by_tier += [_branch(session, spec, tier, eco) for eco, tier in _allied(spec, each)]
    together = [d.eco.in_(spec.allied)] if spec.allied else []
    hits = [_branch(session, spec, tier, eco) for eco, tier in _allied(spec, together)]
    by_hit = [_branch(session, spec, d.tier == _tier(spec)), *hits] if spec.tokens else by_tier
    # SQLite's FTS5 hits are a subquery each branch would read again: its index drives.
    tier_by_tier = spec.sort == "name" and _dialect(session) == "postgresql"
    branches = by_tier if tier_by_tier else by_hit
    cap = spec.offset + spec.limit + COUNT_CAP
    ids = union_all(*(b.with_only_columns(d.id) for b in by_hit))  # no scores to count
    counted = select(func.count()).select_from(ids.limit(cap).subquery())
    total = int((await session.execute(counted)).scalar_one())
    # The page is among each branch's first offset+limit rows: each branch stops there
    # (in index order when the sort allows), and only those few rows are merged.
    firsts = [
        b.order_by(*_order(spec, b.selected_columns)).limit(spec.offset + spec.limit).subquery()
        for b in branches
    ]
    u = union_all(*(select(*f.c) for f in firsts)).subquery().c
    page = select(u.entry, u.eco, u.name, u.partner, u.verified, u.summary).order_by(
        *_order(spec, u)
    )
    rows = await session.execute(page.offset(spec.offset).limit(spec.limit))
    return total, total < cap, list(rows.all())


def _order(spec: SearchSpec, cols: Any) -> list[Any]:
    order: list[Any] = [cols.name_key, cols.entry, cols.eco]
    if spec.sort == "recent":
        return [cols.updated_at.desc(), *order]
    if spec.sort == "relevance" and spec.tokens:
        return [cols.score.desc(), *order]
    return order
