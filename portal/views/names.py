"""Display names for person ids, looked up through the gateway (what the viewer may see)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from portal.web import Ctx


async def names(ctx: Ctx, ids: Iterable[str]) -> dict[str, str]:
    unique = list(dict.fromkeys(i for i in ids if i))[:50]
    views = await asyncio.gather(*(ctx.attempt("profile.person.get", person=i) for i in unique))
    return {i: (v or {}).get("name") or i for i, (v, _err) in zip(unique, views, strict=True)}
