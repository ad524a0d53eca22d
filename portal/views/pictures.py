"""Profile pictures in the portal: uploading one's avatar (or, for a partner admin, the
company's logo), serving stored pictures with long-lived caching (their address carries the
content hash), and looking up the pictures of the people a page shows."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from contracts.v1.profile_images import MAX_UPLOAD_BYTES
from portal.api import ApiError
from portal.views.people import (
    COMPANY_FORM,
    PERSON_FORM,
    ProfileForm,
    edit_page,
    require_company_admin,
    require_self,
)
from portal.web import Ctx, CtxDep, done

router = APIRouter()
FOREVER = "private, max-age=31536000, immutable"
FACE_SECONDS = 60.0


@router.post("/people/{person}/picture")
async def upload_avatar(ctx: CtxDep, request: Request, person: str) -> Response:
    await require_self(ctx, person)
    response = await _upload(ctx, request, PERSON_FORM, person, "profile.person.set_avatar")
    ctx.portal.faces.pop(person, None)  # this replica shows the new one at once
    for key in [k for k in ctx.portal.cards if k[1] == person]:
        ctx.portal.cards.pop(key, None)
    return response


@router.post("/companies/{partner}/logo")
async def upload_logo(ctx: CtxDep, request: Request, partner: str) -> Response:
    await require_company_admin(ctx, partner)
    return await _upload(ctx, request, COMPANY_FORM, partner, "profile.company.set_logo")


async def _upload(ctx: Ctx, request: Request, spec: ProfileForm, ident: str, op: str) -> Response:
    try:
        data = await _file(request)
        await ctx.call(op, **{spec.param: ident}, image=base64.b64encode(data).decode())
    except ApiError as exc:  # the edit page again, saying what was wrong with the file
        return await edit_page(ctx, spec, ident, None, exc)
    return RedirectResponse(done(spec.page.format(ident), "picture"), status_code=303)


async def _file(request: Request) -> bytes:
    upload = (await request.form()).get("picture")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ApiError(422, "validation_failed", "choose a picture file to upload")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        size = upload.size or len(data)
        raise ApiError(
            413,
            "payload_too_large",
            f"the picture is {size // 1024} KiB; the limit is {MAX_UPLOAD_BYTES // 1024} KiB:"
            " pick a smaller file",
        )
    return data


@router.get("/pictures/person/{person}/{digest}")
async def avatar(ctx: CtxDep, request: Request, person: str, digest: str) -> Response:
    return await _serve(ctx, request, digest, "profile.person.avatar", person=person)


@router.get("/pictures/company/{partner}/{digest}")
async def logo(ctx: CtxDep, request: Request, partner: str, digest: str) -> Response:
    return await _serve(ctx, request, digest, "profile.company.logo", partner=partner)


async def _serve(ctx: Ctx, request: Request, digest: str, op: str, **ref: str) -> Response:
    pic = await ctx.call(op, **ref)
    etag = f'"{pic["hash"]}"'
    # The address names the content: the current one is cached for good, an old one not.
    cache = FOREVER if pic["hash"] == digest else "private, no-cache"
    headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(base64.b64decode(pic["data"]), media_type=pic["media_type"], headers=headers)


async def faces(ctx: Ctx, ids: Iterable[str]) -> dict[str, str]:
    """The picture hash of each of these people who has one (cached for a minute)."""
    cache, now = ctx.portal.faces, time.monotonic()
    unique = list(dict.fromkeys(i for i in ids if i))[:50]
    missing = [i for i in unique if i not in cache or cache[i][0] < now]
    views = await asyncio.gather(*(ctx.attempt("profile.person.get", person=i) for i in missing))
    for ident, (view, err) in zip(missing, views, strict=True):
        if err is None:
            cache[ident] = (now + FACE_SECONDS, _hash(view))
    if len(cache) > 10_000:
        cache.clear()
    return {i: h for i in unique if (h := (cache.get(i) or (0.0, None))[1])}


def _hash(view: Any) -> str | None:
    return (view or {}).get("avatar") or None
