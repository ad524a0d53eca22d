"""Directory, person and company profiles: view, edit my own, partner admins edit their company."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import BY_NAME, ApiError
from portal.forms import split_tags
from portal.web import Ctx, CtxDep, done

router = APIRouter()

PERSON_LISTS = ("skills", "needs", "offers", "interests", "industries", "regions", "languages")
PERSON_FIELDS = ("headline", "bio", *PERSON_LISTS, "links")
COMPANY_LISTS = ("capabilities", "needs", "offers", "certifications", "industries", "regions")
COMPANY_FIELDS = ("description", *COMPANY_LISTS, "size")
VISIBILITIES = ("ecosystem", "connections", "company", "private")
FILTERS = ("q", "industry", "region", "skill", "partner")


@router.get("/directory")
async def directory(ctx: CtxDep, request: Request) -> Response:
    args = request.query_params
    kind = "company" if args.get("kind") == "company" else "person"
    params: dict[str, Any] = {k: args.get(k) or None for k in FILTERS}
    if args.get("verified") == "1":
        params["verified"] = True
    if args.get("allied") == "1" and _searches_allies():  # the allied ecosystems too
        params["allied"] = True
    sort = args.get("sort") if args.get("sort") in ("relevance", "name", "recent") else "relevance"
    page = max(1, int(args.get("page", "1"))) if args.get("page", "1").isdigit() else 1
    result, err = await ctx.attempt(
        "profile.directory.search", kind=kind, sort=sort, page=page, page_size=20, **params
    )
    rest = [(k, v) for k, v in args.multi_items() if k != "page"]

    def page_url(n: int) -> str:
        return "/directory?" + urlencode([*rest, ("page", str(n))])

    return ctx.render(
        "directory.html",
        kind=kind,
        params=params,
        sort=sort,
        page=page,
        result=result,
        err=err,
        verified=args.get("verified") == "1",
        allied=args.get("allied") == "1",
        allied_ok=_searches_allies(),
        page_url=page_url,
    )


@router.get("/me")
async def me(ctx: CtxDep) -> Response:
    return RedirectResponse(f"/people/{ctx.session.sub}", status_code=303)


@router.get("/people/{person}")
async def person(ctx: CtxDep, person: str) -> Response:
    view = await ctx.call("profile.person.get", person=person)
    card, _ = await ctx.attempt("profile.person.card", person=person, limit=30)
    own = person == ctx.session.sub
    return ctx.render("person.html", p=view, tagcloud=(card or {}).get("cloud"), own=own)


async def require_self(ctx: Ctx, person: str) -> None:
    """Only one's own profile is edited here: someone else's that the viewer can see answers
    "not allowed" (403); one the viewer cannot see stays "not found"."""
    if person == ctx.session.sub:
        return
    view = await ctx.call("profile.person.get", person=person)  # 404 when not visible
    raise ApiError(
        403,
        "forbidden",
        f"Not allowed: only {view.get('name') or 'the person'} edits their own profile.",
    )


@router.get("/people/{person}/edit")
async def edit_person(ctx: CtxDep, person: str) -> Response:
    await require_self(ctx, person)
    return await edit_page(ctx, PERSON_FORM, person)


@router.post("/people/{person}/edit")
async def save_person(ctx: CtxDep, request: Request, person: str) -> Response:
    await require_self(ctx, person)
    return await _save(ctx, PERSON_FORM, person, request)


@dataclass(frozen=True)
class ProfileForm:
    """What differs between editing a person's profile and a company's."""

    kind: str  # "person" | "company": the profile.<kind>.get/update operations
    param: str  # the operation's parameter naming the profile
    template: str
    var: str  # the template's name for the profile
    texts: tuple[str, ...]  # plain text fields
    lists: tuple[str, ...]  # tag-list fields
    fields: tuple[str, ...]  # fields with a visibility
    page: str  # the profile page, formatted with the id
    kind_done: str  # the confirmation shown after saving (portal.web.DONE)


PERSON_FORM = ProfileForm(
    "person", "person", "person_edit.html", "p", ("headline", "bio"), PERSON_LISTS,
    PERSON_FIELDS, "/people/{}", "profile",
)  # fmt: skip
COMPANY_FORM = ProfileForm(
    "company", "partner", "company_edit.html", "c", ("description", "size"), COMPANY_LISTS,
    COMPANY_FIELDS, "/companies/{}", "company",
)  # fmt: skip


async def edit_page(
    ctx: Ctx, spec: ProfileForm, ident: str, patch: dict[str, Any] | None = None,
    err: ApiError | None = None,
) -> Response:  # fmt: skip
    view = await ctx.call(f"profile.{spec.kind}.get", **{spec.param: ident})
    return ctx.render(
        spec.template,
        status=err.status if err else 200,
        lists=spec.lists,
        visibilities=VISIBILITIES,
        fields=spec.fields,
        allied_ok=_allied_ok(spec),
        err=err,
        **{spec.var: {**view, **(patch or {})}},
    )


async def _save(ctx: Ctx, spec: ProfileForm, ident: str, request: Request) -> Response:
    form = await request.form()
    patch: dict[str, Any] = {
        **{k: str(form.get(k, "")) for k in spec.texts},
        **{k: split_tags(form.get(k)) for k in spec.lists},
        "visibility": _visibility(form, spec.fields),
    }
    if _allied_ok(spec) and form.get("allied_form") == "1":  # unticked boxes are not sent
        patch["allied"] = {f: form.get(f"ally_{f}") == "1" for f in spec.fields}
    if "links" in spec.fields and "links" in form:
        patch["links"] = parse_links(str(form.get("links", "")))
    try:
        await ctx.call(f"profile.{spec.kind}.update", **{spec.param: ident}, **patch)
    except ApiError as exc:  # the form again, with what was typed and the error
        return await edit_page(ctx, spec, ident, patch, exc)
    return RedirectResponse(done(spec.page.format(ident), spec.kind_done), status_code=303)


def parse_links(value: str) -> list[dict[str, str]]:
    """One link a line, "Label https://…" (or the address alone, which is then its label)."""
    links = []
    for line in value.splitlines():
        words = line.split()
        if not words:
            continue
        url = words[-1]
        label = " ".join(words[:-1]) or url.split("://", 1)[-1].rstrip("/")
        links.append({"label": label[:80], "url": url})
    return links[:20]


def _searches_allies() -> bool:
    """Whether this deployment's directory can include allied ecosystems."""
    op = BY_NAME.get("profile.directory.search")
    return op is not None and "allied" in op.request.model_fields


def _allied_ok(spec: ProfileForm) -> bool:
    """Whether this deployment's profile takes per-field sharing with allied ecosystems."""
    op = BY_NAME.get(f"profile.{spec.kind}.update")
    return op is not None and "allied" in op.request.model_fields


def _visibility(form: Any, fields: tuple[str, ...]) -> dict[str, str]:
    return {f: str(form.get(f"vis_{f}")) for f in fields if form.get(f"vis_{f}") in VISIBILITIES}


def _can_edit_company(ctx: CtxDep, partner: str) -> bool:
    return ctx.session.partner == partner and ctx.session.has_role("partner_admin")


@router.get("/companies/{partner}")
async def company(ctx: CtxDep, partner: str) -> Response:
    view = await ctx.call("profile.company.get", partner=partner)
    card, _ = await ctx.attempt("profile.company.card", partner=partner, limit=30)
    people, people_err = await ctx.attempt(
        "profile.directory.search", kind="person", partner=partner, page_size=50
    )
    return ctx.render(
        "company.html",
        c=view,
        tagcloud=(card or {}).get("cloud"),
        people=people,
        people_err=people_err,
        can_edit=_can_edit_company(ctx, partner),
    )


async def require_company_admin(ctx: Ctx, partner: str) -> None:
    """Company profiles are public in the ecosystem, so a company that exists answers
    "not allowed" (403) to those who may not edit it, and only an unknown one "not found"."""
    if _can_edit_company(ctx, partner):
        return
    view = await ctx.call("profile.company.get", partner=partner)  # 404 when there is none
    raise ApiError(
        403,
        "forbidden",
        f"Not allowed: only the partner admins of {view.get('name') or partner} "
        "edit its company profile.",
    )


@router.get("/companies/{partner}/edit")
async def edit_company(ctx: CtxDep, partner: str) -> Response:
    await require_company_admin(ctx, partner)
    return await edit_page(ctx, COMPANY_FORM, partner)


@router.post("/companies/{partner}/edit")
async def save_company(ctx: CtxDep, request: Request, partner: str) -> Response:
    await require_company_admin(ctx, partner)
    return await _save(ctx, COMPANY_FORM, partner, request)
