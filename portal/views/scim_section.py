"""The "Directory sync (SCIM)" section's data: a company's directory tokens and group rules
as identity shows them to the signed-in admin (``directory_sync.html`` renders it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from portal.api import ApiError
from portal.identity_admin import IdentityAdmin
from portal.web import Ctx


async def kept(coro: Any) -> tuple[Any, ApiError | None]:
    """A part of a page, or its error for the page to show (401 ends the session)."""
    try:
        return await coro, None
    except ApiError as exc:
        if exc.status == 401:
            raise
        return None, exc


def token_state(token: dict[str, Any], now: datetime) -> str:
    """``active``, ``revoked`` or ``expired``: whether a directory can still use the token."""
    if token.get("revoked"):
        return "revoked"
    try:
        expires = datetime.fromisoformat(str(token.get("expires_at")))
    except ValueError:
        return "active"  # no expiry
    return "expired" if expires <= now else "active"


async def scim_section(ctx: Ctx, partner: str, base: str) -> dict[str, Any] | None:
    """The section for ``partner``, its forms posting under ``base``; None (no section)
    where identity refuses this person."""
    idp = IdentityAdmin(ctx.portal.http, ctx.portal.settings.issuer)
    (tokens, t_err), (rules, r_err) = await asyncio.gather(
        kept(idp.scim_tokens(ctx.token, partner)), kept(idp.scim_rules(ctx.token, partner))
    )
    if any(e is not None and e.status == 403 for e in (t_err, r_err)):
        return None
    now = datetime.now(UTC)
    return {
        "base": base,
        "url": f"{ctx.portal.settings.issuer}/scim/v2",
        "tokens": [{**t, "state": token_state(t, now)} for t in tokens or []],
        "t_err": t_err,
        "rules": (rules or {}).get("rules", []),
        "grantable": (rules or {}).get("grantable", []),
        "r_err": r_err,
    }
