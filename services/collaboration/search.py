"""Content search: the threads, posts and notes a caller may read that contain every word.

Forum content follows the forums' rule (hidden content for its author and moderators);
workspace content needs the ``workspace:read`` scope and membership, as every workspace
read does. Results come newest first, a page per kind."""

from __future__ import annotations

from typing import Any

from contracts.claims import Scope
from contracts.v1 import collaboration_models as m
from mesh import textsearch
from services.collaboration import repository as repo
from services.collaboration import search_repository as srepo
from services.collaboration import workspace_repository as wrepo
from services.collaboration.models import NoteRow, PostRow, ThreadRow
from services.collaboration.service import Deps, Who

KINDS: tuple[m.SearchKind, ...] = ("thread", "post", "note")


async def content(deps: Deps, who: Who, req: m.SearchContentRequest) -> m.ContentSearchResults:
    words = textsearch.words(req.q)
    offset = (req.page - 1) * req.page_size
    async with deps.transaction() as s:
        spaces: list[str] = []
        if who.claims.has_scope(Scope.WORKSPACE_READ):
            spaces = await wrepo.workspace_ids_of(s, req.eco, who.sub)
        found: list[tuple[m.SearchKind, int, list[Any]]] = []
        for kind in (req.kind,) if req.kind else KINDS:
            query, created, key = _query(kind, req.eco, words, who, spaces)
            total, rows = await srepo.page(s, query, created, key, req.page_size, offset)
            found.append((kind, total, rows))
        authors = [_author(row) for _, _, rows in found for row in rows]
        names = await repo.people_names(s, req.eco, authors)
    groups = [
        m.ContentGroup(kind=kind, total=total, items=[_hit(kind, r, words, names) for r in rows])
        for kind, total, rows in found
    ]
    return m.ContentSearchResults(
        words=words, page=req.page, page_size=req.page_size, groups=groups
    )


def _query(
    kind: m.SearchKind, eco: str, words: list[str], who: Who, spaces: list[str]
) -> tuple[Any, Any, Any]:
    if kind == "thread":
        threads = srepo.thread_query(eco, words, who.sub, who.moderator, spaces)
        return threads, ThreadRow.created_at, ThreadRow.id
    if kind == "post":
        posts = srepo.post_query(eco, words, who.sub, who.moderator, spaces)
        return posts, PostRow.created_at, PostRow.id
    return srepo.note_query(eco, words, spaces), NoteRow.created_at, NoteRow.id


def _author(row: Any) -> str:
    return str(row[0].author)


def _hit(kind: m.SearchKind, row: Any, words: list[str], names: dict[str, str]) -> m.ContentHit:
    item = row[0]
    if kind == "post":
        thread: ThreadRow = row[1]
        place = {"thread": thread.id, "workspace": thread.workspace, "category": thread.category}
        title = thread.title
    elif kind == "thread":
        place = {"thread": item.id, "workspace": item.workspace, "category": item.category}
        title = item.title
    else:
        place = {"thread": None, "workspace": item.workspace, "category": None}
        title = item.title
    return m.ContentHit(
        kind=kind,
        id=item.id,
        title=title,
        excerpt=textsearch.excerpt(item.body, words),
        author=item.author,
        author_name=names.get(item.author, ""),
        created_at=item.created_at,
        **place,
    )
