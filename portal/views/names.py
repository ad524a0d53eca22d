"""Display names for person ids, looked up through the gateway (what the viewer may see)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from portal.api import ApiError
from portal.identity_admin import IdentityAdmin
from portal.web import Ctx


async def names(ctx: Ctx, ids: Iterable[str]) -> dict[str, str]:
    unique = list(dict.fromkeys(i for i in ids if i))[:50]
    views = await asyncio.gather(*(ctx.attempt("profile.person.get", person=i) for i in unique))
    return {i: (v or {}).get("name") or i for i, (v, _err) in zip(unique, views, strict=True)}


async def allied_names(ctx: Ctx, people: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Display names of people of allied ecosystems, as ``(ally, person)`` pairs (what each
    shares with allies: their name, when they share anything at all)."""
    unique = list(dict.fromkeys(p for p in people if all(p)))[:50]
    views = await asyncio.gather(
        *(ctx.attempt("profile.ally.person.get", ally=a, person=p) for a, p in unique)
    )
    return {p: (v or {}).get("name") or p for (_a, p), (v, _err) in zip(unique, views, strict=True)}


async def brands(ctx: Ctx) -> dict[str, str]:
    """The brands of this ecosystem's active allies (ecosystem → name); none when identity
    cannot say (names then show as ecosystem ids)."""
    try:
        return await IdentityAdmin(ctx.portal.http, ctx.portal.settings.issuer).allies(ctx.token)
    except ApiError as exc:
        if exc.status == 401:
            raise
        return {}


def sides(intro: dict[str, Any], eco: str) -> list[tuple[str, str | None]]:
    """Both people of an introduction, each with their ecosystem when it is an allied one."""
    return [
        (intro[side], e if (e := intro.get(f"{side}_eco")) and e != eco else None)
        for side in ("a", "b")
    ]


async def intro_names(
    ctx: Ctx, intros: list[dict[str, Any]], more: Iterable[str] = ()
) -> tuple[dict[str, str], dict[str, str]]:
    """Display names of the people of ``intros`` (and of ``more`` of this ecosystem), and
    the brands of the allied ecosystems among them."""
    eco = ctx.session.eco
    ids = [x for i in intros for x, e in sides(i, eco) if not e]
    allied = [(e, x) for i in intros for x, e in sides(i, eco) if e]
    found = {**await names(ctx, [*ids, *more]), **await allied_names(ctx, allied)}
    return found, (await brands(ctx) if allied else {})
