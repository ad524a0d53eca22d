"""Browser pages: authorize (with login and consent), sign-in, sign-out.

Server-rendered (Jinja2), no scripts; every form carries a CSRF token bound to a
cookie (double submit, MAC'd with the deployment secret).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import signin as logic
from identity.domain.crypto import new_secret
from identity.domain.tokens import grant_scope
from identity.http.oidc import oauth_request
from identity.http.runtime import IdentityRuntime, RuntimeDep, client_ip
from identity.oauth.adapter import StarletteRequest
from identity.store import repository as repo
from identity.store.transaction import Tx

router = APIRouter()
SESSION_COOKIE = "pm_session"
CSRF_COOKIE = "pm_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass
class Outcome:
    kind: str  # redirect | login | consent | error
    location: str = ""
    status: int = 302
    context: dict[str, Any] = field(default_factory=dict)


def csrf_token(request: Request, rt: IdentityRuntime) -> tuple[str, str]:
    cookie = request.cookies.get(CSRF_COOKIE) or new_secret()
    return cookie, rt.sealer.mac(cookie)


def csrf_ok(request: Request, rt: IdentityRuntime, token: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and token) and rt.sealer.check_mac(cookie or "", token or "")


def render(
    request: Request, rt: IdentityRuntime, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    cookie, token = csrf_token(request, rt)
    ctx = {"csrf_token": token, **context}
    response = rt.templates.TemplateResponse(request, template, ctx, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.set_cookie(
        CSRF_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=rt.settings.secure_cookies,
        path="/",
    )
    return response


def safe_return(eco: str, target: str | None) -> str:
    """Only paths of this ecosystem's issuer (no open redirect)."""
    base = f"/eco/{eco}/"
    if target and target.startswith(base) and "//" not in target and "\\" not in target:
        return target
    return base + "account"


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
    sid = request.cookies.get(SESSION_COOKIE)
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
        return render(
            request,
            rt,
            "message.html",
            {"title": "Form expired", "detail": "Please go back and try again."},
            403,
        )
    decision = "allow" if form.get("decision") == "allow" else "deny"
    return await _authorize(request, eco, rt, decision)


@router.get("/eco/{eco}/login")
async def login_page(request: Request, eco: str, rt: RuntimeDep) -> Response:
    name, upstreams = await rt.tx(lambda tx: _login_context(rt, tx, eco))
    return render(
        request,
        rt,
        "login.html",
        {
            "eco": eco,
            "eco_name": name,
            "upstreams": upstreams,
            "return_to": safe_return(eco, request.query_params.get("return_to")),
        },
    )


def _login_context(rt: IdentityRuntime, tx: Tx, eco: str) -> tuple[str, list[dict[str, str]]]:
    call = rt.enter(tx, eco)
    ups = [{"alias": u.alias, "name": u.name} for u in repo.list_upstreams(tx.s, eco)]
    return call.eco.name, ups


@router.post("/eco/{eco}/login")
async def login_submit(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    return_to = safe_return(eco, str(form.get("return_to") or ""))
    name, upstreams = await rt.tx(lambda tx: _login_context(rt, tx, eco))
    page = {
        "eco": eco,
        "eco_name": name,
        "upstreams": upstreams,
        "return_to": return_to,
        "username": username,
    }
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return render(
            request, rt, "login.html", {**page, "error": "The form expired; try again."}, 403
        )
    keys = logic.throttle_keys(eco, username, client_ip(request))

    def load(tx: Tx) -> tuple[bool, Any]:
        rt.enter(tx, eco)
        return logic.locked(tx, keys), logic.find_person(tx, eco, username)

    is_locked, person = await rt.tx(load)
    if is_locked:
        await rt.tx(
            lambda tx: tx.audit(
                eco,
                "login.failed",
                target=username,
                outcome="failure",
                reason="locked",
                ip=client_ip(request),
            )
        )
        return render(
            request,
            rt,
            "login.html",
            {**page, "error": "Too many failed attempts. Try again later."},
            429,
        )
    stored = person.password_hash if person else None
    ok = await asyncio.to_thread(rt.passwords.verify, stored, password)
    if not ok:

        def fail(tx: Tx) -> None:
            logic.record_failure(tx, rt.settings, *keys)
            tx.audit(
                eco,
                "login.failed",
                target=username,
                outcome="failure",
                reason="bad_credentials",
                ip=client_ip(request),
            )

        await rt.tx(fail)
        return render(
            request, rt, "login.html", {**page, "error": "Wrong username or password."}, 401
        )

    def succeed(tx: Tx) -> str:
        repo.clear_throttle(tx.s, keys[0])  # the account's failures; the address keeps its own
        sid, _ = logic.start_session(tx, rt.settings, person)
        tx.audit(
            eco,
            "login.succeeded",
            actor=person.id,
            target=person.id,
            partner=person.partner,
            ip=client_ip(request),
        )
        return sid

    sid = await rt.tx(succeed)
    response = RedirectResponse(return_to, 303)
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        samesite="lax",
        path=f"/eco/{eco}/",
        secure=rt.settings.secure_cookies,
        max_age=rt.settings.session_ttl_s,
    )
    return response


@router.get("/eco/{eco}/account")
async def account(request: Request, eco: str, rt: RuntimeDep) -> Response:
    sid = request.cookies.get(SESSION_COOKIE)
    user = await rt.tx(lambda tx: (rt.enter(tx, eco), logic.session_subject(tx, eco, sid))[1])
    if user is None:
        return RedirectResponse(f"/eco/{eco}/login", 302)
    return render(
        request,
        rt,
        "message.html",
        {
            "title": f"Signed in as {user.name}",
            "detail": f"{user.partner} · {', '.join(user.roles)}",
            "logout": f"/eco/{eco}/logout",
        },
    )
