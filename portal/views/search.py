"""Search everywhere: one box over people, companies, forum and workspace content and the
connector catalogue. Each service searches what it owns and shows only what the caller may
see; this page asks them all at once and groups what they found by kind."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from mesh import textsearch
from portal.api import ApiError
from portal.web import Ctx, CtxDep

router = APIRouter()
PREVIEW = 5  # hits per kind on the overview
PAGE = 20  # hits per page of one kind


@dataclass(frozen=True)
class Kind:
    key: str
    label: str


KINDS = (
    Kind("people", "People"),
    Kind("companies", "Companies"),
    Kind("threads", "Forum and workspace threads"),
    Kind("posts", "Posts"),
    Kind("notes", "Workspace notes"),
    Kind("operations", "Connector operations"),
)
CONTENT = {"threads": "thread", "posts": "post", "notes": "note"}


@dataclass
class Group:
    kind: Kind
    total: int = 0
    items: list[dict[str, Any]] | None = None
    err: ApiError | None = None


def _directory(kind: str, found: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    items = [
        {
            "title": e["name"],
            "href": f"/people/{e['id']}" if kind == "person" else f"/companies/{e['id']}",
            "text": e.get("summary") or "",
            "partner": e["partner"] if kind == "person" else None,
        }
        for e in found.get("entries", [])
    ]
    return int(found.get("total", 0)), items


def _content_href(hit: dict[str, Any]) -> str:
    if hit["workspace"]:
        if hit["kind"] == "note":
            return f"/workspaces/{hit['workspace']}"
        base = f"/workspaces/{hit['workspace']}/threads/{hit['thread']}"
    else:
        base = f"/threads/{hit['thread']}"
    return base + (f"#post-{hit['id']}" if hit["kind"] == "post" else "")


def _content(hit: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": hit["title"],
        "href": _content_href(hit),
        "text": hit["excerpt"],
        "author": hit["author"],
        "author_name": hit["author_name"],
        "at": hit["created_at"],
        "private": bool(hit["workspace"]),
    }


async def _people(ctx: Ctx, q: str, kind: str, page: int, size: int) -> tuple[int, list[Any]]:
    found = await ctx.call(
        "profile.directory.search", kind=kind, q=q, sort="relevance", page=page, page_size=size
    )
    return _directory(kind, found)


async def _operations(ctx: Ctx, q: str, page: int, size: int) -> tuple[int, list[Any]]:
    found = await ctx.call("connector.catalogue", q=q)
    ops = found.get("items", [])
    items = [
        {
            "title": op["id"],
            "href": "/connectors",
            "text": op.get("description") or f"{op['method']} {op['path']}",
            "partner": op["partner"],
        }
        for op in ops[(page - 1) * size : page * size]
    ]
    return len(ops), items


async def _gather(ctx: Ctx, q: str, only: str | None, page: int) -> list[Group]:
    size = PAGE if only else PREVIEW
    wanted = [k for k in KINDS if only in (None, k.key)]
    groups = {k.key: Group(k) for k in wanted}
    calls: dict[str, Any] = {}
    if "people" in groups:
        calls["people"] = _people(ctx, q, "person", page, size)
    if "companies" in groups:
        calls["companies"] = _people(ctx, q, "company", page, size)
    if "operations" in groups:
        calls["operations"] = _operations(ctx, q, page, size)
    content = [k for k in groups if k in CONTENT]
    if content:
        kind = CONTENT[only] if only else None
        calls["content"] = ctx.call(
            "collaboration.search.content", q=q, kind=kind, page=page, page_size=size
        )
    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    for key, result in zip(calls, results, strict=True):
        if isinstance(result, ApiError) and result.status == 401:
            raise result
        if isinstance(result, BaseException) and not isinstance(result, ApiError):
            raise result
        targets = content if key == "content" else [key]
        for target in targets:
            if isinstance(result, ApiError):
                groups[target].err = result
            elif key == "content":
                group = next(g for g in result["groups"] if g["kind"] == CONTENT[target])
                groups[target].total = group["total"]
                groups[target].items = [_content(h) for h in group["items"]]
            else:
                groups[target].total, groups[target].items = result
    return list(groups.values())


def _link(q: str, kind: str, page: int = 1) -> str:
    return "/search?" + urlencode({"q": q, "kind": kind, "page": page})


@router.get("/search")
async def search(ctx: CtxDep, q: str = "", kind: str = "", page: int = 1) -> Response:
    """The overview (a few of each kind) or, with ``kind``, that kind page by page."""
    q = q.strip()[:200]
    only = kind if kind in {k.key for k in KINDS} else None
    page = min(max(page, 1), 1000)
    if not q:
        return ctx.render("search.html", q="", groups=[], words=[], only=only)
    groups = await _gather(ctx, q, only, page)
    pages = None
    if only:
        total = groups[0].total
        last = max(1, -(-total // PAGE))
        pages = {
            "page": page,
            "last": last,
            "prev": _link(q, only, page - 1) if page > 1 else None,
            "next": _link(q, only, page + 1) if page < last else None,
        }
    return ctx.render(
        "search.html",
        q=q,
        groups=groups,
        words=textsearch.words(q),
        only=only,
        pages=pages,
        more={k.key: _link(q, k.key) for k in KINDS},
        overview="/search?" + urlencode({"q": q}),
    )
