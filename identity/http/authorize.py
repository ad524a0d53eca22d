"""The authorization endpoint's pages: the decision (sign-in needed, consent, the response
to the client) and the consent form.

The authorization response (a code or an error) goes back to the client as a redirect
with the parameters in the query, or, for ``response_mode=form_post``, as a page that
posts them (OAuth 2.0 Form Post Response Mode); either way it names the issuer
(``iss``, RFC 9207). A request may be one pushed beforehand (``request_uri``, RFC 9126).
A sign-in made for a request carries that request's ticket (``login_ticket``): the
request counts it, once, as the fresh login ``prompt=login`` or ``max_age`` asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import factors, par, second_factor
from identity.domain import signin as logic
from identity.domain.crypto import new_secret
from identity.domain.tokens import Subject, grant_scope
from identity.http import cookies
from identity.http.oidc import oauth_request
from identity.http.pages import SECURITY_HEADERS, csrf_ok, form_expired, render
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.oauth.adapter import StarletteRequest, current
from identity.store import repository as repo
from identity.store.transaction import Tx

router = APIRouter()
FORM_POST = "form_post"
# Parameters of an authorization request that may stand beside a request_uri.
BESIDE_PUSHED = frozenset({"client_id", "request_uri", logic.TICKET})


@dataclass
class Outcome:
    kind: str  # respond | login | second-factor | enrol | consent | error
    location: str = ""  # respond: the client's redirect URI
    params: list[tuple[str, str]] = field(default_factory=list)  # respond: the response
    mode: str = "query"  # respond: query | form_post
    status: int = 302
    context: dict[str, Any] = field(default_factory=dict)


def _respond(
    rt: IdentityRuntime, eco: str, oreq: StarletteRequest, redirect_uri: str, location: str
) -> Outcome:
    """The authorization response authlib wrote into ``location`` (``redirect_uri`` plus
    its parameters), with ``iss`` (RFC 9207), in the response mode asked for."""
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    params = parse_qsl(urlsplit(location).query, keep_blank_values=True)[len(own) :]
    params.append(("iss", rt.settings.issuer(eco)))
    mode = FORM_POST if oreq.payload.data.get("response_mode") == FORM_POST else "query"
    return Outcome("respond", redirect_uri, params, mode)


def _error(rt: IdentityRuntime, eco: str, oreq: StarletteRequest, err: OAuth2Error) -> Outcome:
    err.state = err.state or oreq.payload.state
    if err.redirect_uri:
        location = add_params_to_uri(err.redirect_uri, err.get_body())
        return _respond(rt, eco, oreq, err.redirect_uri, location)
    return Outcome("error", status=400, context={"error": err.error, "detail": err.description})


def _pushed(tx: Tx, eco: str, oreq: StarletteRequest) -> tuple[StarletteRequest, Any] | Outcome:
    """The request to decide on: this one, or the one pushed earlier (RFC 9126) with
    nothing in this one that the pushed one does not say."""
    uri = oreq.args.get("request_uri")
    if not uri:
        return oreq, None
    try:
        pushed = par.resolve(tx, eco, uri, oreq.args.get("client_id"))
    except par.PushedRequestError as exc:
        return Outcome(
            "error", status=400, context={"error": "invalid_request_uri", "detail": str(exc)}
        )
    said = dict(pushed.params)
    for name, value in oreq.args.items():
        if name not in BESIDE_PUSHED and said.get(name) != value:
            detail = f"{name} differs from the pushed authorization request"
            return Outcome(
                "error", status=400, context={"error": "invalid_request", "detail": detail}
            )
    request = StarletteRequest(oreq.method, oreq.uri, oreq.headers, pushed.params, [])
    return request, pushed


def _needs_fresh_login(data: dict[str, str], auth_time: int | None) -> bool:
    """Does the request ask for a sign-in newer than the session's? (whole seconds, as
    ``auth_time``; ``max_age=0`` is ``prompt=login``, OIDC Core §3.1.2.1)"""
    if "login" in (data.get("prompt") or "").split():
        return True
    max_age = data.get("max_age")
    if not max_age or not (max_age.isascii() and max_age.isdigit()):
        return False
    return int(max_age) == 0 or int(time.time()) - (auth_time or 0) > int(max_age)


def _strong_enough(tx: Tx, user: Subject | None, data: dict[str, str]) -> str | OAuth2Error:
    """Whether the session serves this request (:func:`second_factor.session_step`): the
    acr it asks for (``acr_values``, or ``claims``), and the person's policy."""
    try:
        acr = factors.requested_acr(data)
    except factors.BadClaims as exc:
        return InvalidRequestError(str(exc))
    if user is None:
        return second_factor.DONE
    person = repo.get_person(tx.s, user.sub)
    if person is None:
        return second_factor.DONE
    return second_factor.session_step(tx, person, user.extra.get("amr"), acr)


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
    ticket = oreq.args.get(logic.TICKET)
    found = _pushed(tx, eco, oreq)
    if isinstance(found, Outcome):
        return found
    oreq, pushed = found
    outcome = _decide(rt, tx, eco, oreq, sid, decision, ticket, pushed is not None)
    if pushed is not None:
        waits = outcome.kind in ("login", "consent", second_factor.CODE, second_factor.ENROL)
        (par.hold if waits else par.spend)(tx, pushed)
    return outcome


def _decide(
    rt: IdentityRuntime,
    tx: Tx,
    eco: str,
    oreq: StarletteRequest,
    sid: str | None,
    decision: str | None,
    ticket: str | None,
    was_pushed: bool,
) -> Outcome:
    user = logic.session_subject(tx, eco, sid)
    try:
        grant = rt.server.get_consent_grant(oreq, end_user=user)
    except OAuth2Error as err:
        return _error(rt, eco, oreq, err)
    data, state = oreq.payload.data, oreq.payload.state
    client = grant.request.client
    if not was_pushed and (
        client.row.require_pushed_authorization_requests
        or current().eco.require_pushed_authorization_requests
    ):
        description = "authorization requests of this client must be pushed first (PAR)"
        refused = InvalidRequestError(description, redirect_uri=grant.redirect_uri, state=state)
        return _error(rt, eco, oreq, refused)
    prompt = set((data.get("prompt") or "").split())
    fresh = None
    if user is not None and _needs_fresh_login(data, user.auth_time):
        fresh = logic.fresh_login(tx, sid, ticket)
        if fresh is None:
            user = None
    step = _strong_enough(tx, user, data)
    if isinstance(step, OAuth2Error):
        step.redirect_uri, step.state = grant.redirect_uri, state
        return _error(rt, eco, oreq, step)
    if step == second_factor.REFUSED:
        user = None  # sign in again, another way (passkeys_only)
    if user is None:
        if "none" in prompt:
            login = LoginRequiredError(redirect_uri=grant.redirect_uri, state=state)
            return _error(rt, eco, oreq, login)
        return Outcome("login")
    if step != second_factor.DONE:  # step-up: the session must prove a second factor
        if "none" in prompt:
            needed = InteractionRequiredError(redirect_uri=grant.redirect_uri, state=state)
            return _error(rt, eco, oreq, needed)
        return Outcome(step)
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
            needed = ConsentRequiredError(redirect_uri=grant.redirect_uri, state=state)
            return _error(rt, eco, oreq, needed)
        return Outcome(
            "consent",
            context={
                "client": client.row.name,
                "scopes": scope.split(),
                "partner": user.partner,
                "user": user.name,
            },
        )
    if fresh is not None:
        logic.spend_fresh(tx, fresh)  # this request's fresh login counts once
    try:
        redirect_uri = grant.validate_authorization_request()
        _s, _b, headers = grant.create_authorization_response(
            redirect_uri, None if decision == "deny" else user
        )
    except OAuth2Error as err:
        return _error(rt, eco, oreq, err)
    return _respond(rt, eco, oreq, redirect_uri, dict(headers)["Location"])


def _form_post(request: Request, rt: IdentityRuntime, outcome: Outcome) -> Response:
    """The response as a page that posts it to the client at once (a nonce'd script
    under the page's CSP; without scripts, a button)."""
    nonce = new_secret(16)
    context = {"action": outcome.location, "params": outcome.params, "nonce": nonce}
    response = rt.templates.TemplateResponse(request, "form_post.html", context)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _login_redirect(request: Request, eco: str, page: str = "login") -> Response:
    """To the sign-in page (or its second step, ``login/{page}``), and back to this
    request with a new ticket."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != logic.TICKET]
    query.append((logic.TICKET, new_secret(16)))
    back = f"/eco/{eco}/authorize?{urlencode(query)}"
    path = "login" if page == "login" else f"login/{page}"
    return RedirectResponse(f"/eco/{eco}/{path}?{urlencode({'return_to': back})}", 302)


async def _authorize(
    request: Request, eco: str, rt: IdentityRuntime, decision: str | None
) -> Response:
    oreq = await oauth_request(request, rt)
    sid = cookies.session_id(request)
    outcome = await rt.tx(lambda tx: decide(rt, tx, eco, oreq, sid, decision))
    if outcome.kind == "respond" and outcome.mode == FORM_POST:
        return _form_post(request, rt, outcome)
    if outcome.kind == "respond":
        location = add_params_to_uri(outcome.location, outcome.params)
        return RedirectResponse(location, 302, headers={"Cache-Control": "no-store"})
    if outcome.kind == "login":
        return _login_redirect(request, eco)
    if outcome.kind in (second_factor.CODE, second_factor.ENROL):
        return _login_redirect(request, eco, outcome.kind)
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
