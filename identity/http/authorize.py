"""The authorization endpoint's pages: the decision (sign-in needed, consent, redirect
back to the client) and the consent form."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import signin as logic
from identity.domain.tokens import grant_scope
from identity.http import cookies
from identity.http.oidc import oauth_request
from identity.http.pages import csrf_ok, form_expired, render
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.oauth.adapter import StarletteRequest
from identity.store.transaction import Tx

router = APIRouter()


@dataclass
class Outcome:
    kind: str  # redirect | login | consent | error
    location: str = ""
    status: int = 302
    context: dict[str, Any] = field(default_factory=dict)


def _error(rt: IdentityRuntime, oreq: StarletteRequest, err: OAuth2Error) -> Outcome:
    _status, _body, headers = rt.server.handle_error_response(oreq, err)
    location = dict(headers or []).get("Location")
    if location:
        return Outcome("redirect", location)
    return Outcome("error", status=400, context={"error": err.error, "detail": err.description})


def decide(
    rt: IdentityRuntime,
    tx: Tx,
    eco: str,
    oreq: StarletteRequest,
    sid: str | None,
    decision: str | None,
) -> Outcome:
    """The authorization decision, in one transaction."""
    rt.enter(tx, eco)
    user = logic.session_subject(tx, eco, sid)
    try:
        grant = rt.server.get_consent_grant(oreq, end_user=user)
    except OAuth2Error as err:
        return _error(rt, oreq, err)
    data, state = oreq.payload.data, oreq.payload.state
    prompt = set((data.get("prompt") or "").split())
    max_age = data.get("max_age")
    stale = bool(
        user
        and max_age
        and max_age.isdigit()
        and time.time() - (user.auth_time or 0) > int(max_age)
    )
    if user is None or "login" in prompt or stale:
        if "none" in prompt:
            return _error(
                rt, oreq, LoginRequiredError(redirect_uri=grant.redirect_uri, state=state)
            )
        return Outcome("login")
    client = grant.request.client
    scope = grant_scope(oreq.payload.scope, client.row.scopes, user.roles)
    if decision == "allow":
        logic.give_consent(tx, eco, user.sub, client.client_id, scope)
    elif (
        decision != "deny"
        and not client.row.first_party
        and (
            "consent" in prompt or not logic.has_consent(tx, eco, user.sub, client.client_id, scope)
        )
    ):
        if "none" in prompt:
            return _error(
                rt, oreq, ConsentRequiredError(redirect_uri=grant.redirect_uri, state=state)
            )
        return Outcome(
            "consent",
            context={
                "client": client.row.name,
                "scopes": scope.split(),
                "partner": user.partner,
                "user": user.name,
            },
        )
    grant_user = None if decision == "deny" else user
    _status, _body, headers = rt.server.create_authorization_response(oreq, grant_user, grant)
    return Outcome("redirect", dict(headers)["Location"])


async def _authorize(
    request: Request, eco: str, rt: IdentityRuntime, decision: str | None
) -> Response:
    oreq = await oauth_request(request, rt)
    sid = cookies.session_id(request)
    outcome = await rt.tx(lambda tx: decide(rt, tx, eco, oreq, sid, decision))
    if outcome.kind == "redirect":
        return RedirectResponse(outcome.location, 302, headers={"Cache-Control": "no-store"})
    if outcome.kind == "login":
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "prompt"]
        back = f"/eco/{eco}/authorize?{urlencode(query)}"
        return RedirectResponse(f"/eco/{eco}/login?{urlencode({'return_to': back})}", 302)
    if outcome.kind == "consent":
        action = f"/eco/{eco}/authorize?{request.url.query}"
        return render(
            request, rt, "consent.html", {"action": action, "eco": eco, **outcome.context}
        )
    return render(
        request,
        rt,
        "message.html",
        {"title": "This sign-in request is not valid", **outcome.context},
        outcome.status,
    )


@router.get("/eco/{eco}/authorize")
async def authorize(request: Request, eco: str, rt: RuntimeDep) -> Response:
    return await _authorize(request, eco, rt, None)


@router.post("/eco/{eco}/authorize")
async def consent(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    decision = "allow" if form.get("decision") == "allow" else "deny"
    return await _authorize(request, eco, rt, decision)
