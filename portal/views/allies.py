"""People and companies of allied ecosystems: their page and hover card show exactly what
they share with allied ecosystems (profile decides, through this ecosystem's own routes,
with the viewer's own token), with the brand of the ecosystem they belong to. A broker
may introduce one of this ecosystem's people to them when the alliance's terms allow."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.web import Ctx, CtxDep, done

router = APIRouter(prefix="/allies/{ally}")


async def _brokers_people(ctx: Ctx) -> tuple[list[dict[str, Any]], ApiError | None]:
    """Whom a broker may introduce: the people of this ecosystem, by name."""
    if not ctx.session.has_role("broker", "operator"):
        return [], None
    found, err = await ctx.attempt(
        "profile.directory.search", kind="person", sort="name", page_size=100
    )
    return (found or {}).get("entries", []), err


async def _person_page(ctx: Ctx, ally: str, person: str, **extra: Any) -> Response:
    view = await ctx.call("profile.ally.person.get", ally=ally, person=person)
    card, _ = await ctx.attempt("profile.ally.person.card", ally=ally, person=person, limit=30)
    ours, ours_err = await _brokers_people(ctx)
    return ctx.render(
        "ally_person.html",
        p=view,
        ally=ally,
        tagcloud=(card or {}).get("cloud"),
        ours=ours,
        ours_err=ours_err,
        **extra,
    )


@router.get("/people/{person}")
async def person(ctx: CtxDep, ally: str, person: str) -> Response:
    return await _person_page(ctx, ally, person)


@router.post("/people/{person}/introduce")
async def introduce(ctx: CtxDep, request: Request, ally: str, person: str) -> Response:
    """A broker introduces one of this ecosystem's people to this allied person."""
    if not ctx.session.has_role("broker", "operator"):
        raise ApiError(403, "forbidden", "Not allowed: only brokers introduce people.")
    form = await request.form()
    try:
        await ctx.call(
            "matching.propose_introduction",
            a=text(form, "a"),
            b=person,
            b_eco=ally,
            note=text(form, "note"),
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        return await _person_page(ctx, ally, person, intro_err=exc, chosen=text(form, "a"))
    return RedirectResponse(done(f"/allies/{ally}/people/{person}", "proposed"), 303)


@router.get("/companies/{partner}")
async def company(ctx: CtxDep, ally: str, partner: str) -> Response:
    view = await ctx.call("profile.ally.company.get", ally=ally, partner=partner)
    card, _ = await ctx.attempt("profile.ally.company.card", ally=ally, partner=partner)
    return ctx.render("ally_company.html", c=view, ally=ally, tagcloud=(card or {}).get("cloud"))
