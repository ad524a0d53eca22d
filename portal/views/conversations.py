"""Direct conversations: "Message" on a hover card or a profile opens the one private
workspace of the viewer and that person (the same one every time)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.views.names import names
from portal.web import CtxDep, done

router = APIRouter()


@router.post("/conversations")
async def open_conversation(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    person = text(form, "person")
    try:
        ws = await ctx.call("collaboration.workspaces.direct", person=person)
    except ApiError as exc:
        if exc.status == 401:
            raise
        name = (await names(ctx, [person])).get(person, person) if person else "this person"
        return ctx.render(
            "conversation_refused.html", status=exc.status, person=person, name=name, err=exc
        )
    return RedirectResponse(done(f"/workspaces/{ws['id']}", "conversation"), status_code=303)
