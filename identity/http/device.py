"""Device Authorization Grant (RFC 8628): the device authorization endpoint and the
verification page where a signed-in person confirms or denies a device."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import InvalidScopeError, OAuth2Error, UnauthorizedClientError
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import device
from identity.domain import signin as logic
from identity.domain.tokens import UnknownScope
from identity.http import cookies
from identity.http.oidc import oauth_request, to_response
from identity.http.pages import csrf_ok, form_expired, render
from identity.http.runtime import IdentityRuntime, RuntimeDep, client_ip
from identity.oauth.adapter import ClientView, StarletteRequest
from identity.oauth.grants import AUTH_METHODS
from identity.store import repository as repo
from identity.store.transaction import Tx

router = APIRouter()


def _authorize_device(
    rt: IdentityRuntime, tx: Tx, eco: str, oreq: StarletteRequest, ip: str
) -> tuple[int, Any, Any]:
    call = rt.enter(tx, eco, ip, cached=True)
    try:
        client: ClientView = rt.server.authenticate_client(oreq, AUTH_METHODS, "device")
        if not client.check_grant_type(device.GRANT_TYPE):
            raise UnauthorizedClientError("this client may not use the device grant")
        try:
            scope = device.client_scope(oreq.payload.scope, client.row.scopes)
        except UnknownScope as exc:
            raise InvalidScopeError(f"unknown scope: {exc}") from None
    except OAuth2Error as err:
        return rt.server.handle_error_response(oreq, err)  # type: ignore[no-any-return]
    device_code, user_code = device.start(tx, rt.settings, eco, client.client_id, scope)
    page = f"{call.issuer}/device"
    shown = device.display(user_code)
    body = {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": page,
        "verification_uri_complete": f"{page}?{urlencode({'user_code': shown})}",
        "expires_in": rt.settings.device_code_ttl_s,
        "interval": rt.settings.device_interval_s,
    }
    return 200, body, []


@router.post("/eco/{eco}/device_authorization")
async def device_authorization(request: Request, eco: str, rt: RuntimeDep) -> Response:
    oreq = await oauth_request(request, rt)
    ip = client_ip(request)
    return to_response(*await rt.tx(lambda tx: _authorize_device(rt, tx, eco, oreq, ip)))


def _page(
    rt: IdentityRuntime, tx: Tx, eco: str, sid: str | None, typed: str | None, ip: str
) -> dict[str, Any] | None:
    """None: sign in first. Otherwise the page's context: the form to type a code in, the
    device to confirm, or why not."""
    rt.enter(tx, eco)
    user = logic.session_subject(tx, eco, sid)
    if user is None:
        return None
    ctx: dict[str, Any] = {"eco": eco, "user": user.name, "step": "enter"}
    if not typed:
        return ctx
    if device.guessing_locked(tx, ip):
        return {**ctx, "error": "Too many wrong codes. Try again later.", "status": 429}
    row = device.find_pending(tx, rt.settings, eco, typed, ip)
    if row is None:
        return {**ctx, "error": "That code is not valid or has expired.", "status": 400}
    client = repo.get_client(tx.s, eco, row.client_id)
    return {
        **ctx,
        "step": "confirm",
        "user_code": device.display(row.user_code),
        "client": client.name if client else row.client_id,
        "scopes": row.scope.split(),
        "partner": user.partner,
    }


def _decide(
    rt: IdentityRuntime, tx: Tx, eco: str, sid: str | None, typed: str, allow: bool, ip: str
) -> str | None:
    """Record the person's decision; the message to show, or None to sign in first."""
    rt.enter(tx, eco)
    user = logic.session_subject(tx, eco, sid)
    if user is None:
        return None
    if device.guessing_locked(tx, ip):
        return "Too many wrong codes. Try again later."
    row = device.find_pending(tx, rt.settings, eco, typed, ip)
    if row is None:
        return "That code is not valid or has expired."
    client = repo.get_client(tx.s, eco, row.client_id)
    device.decide(tx, row, user, allow, client.scopes if client else [])
    return "approved" if allow else "denied"


def _sign_in_first(request: Request, eco: str, typed: str | None) -> Response:
    back = f"/eco/{eco}/device" + (f"?{urlencode({'user_code': typed})}" if typed else "")
    return RedirectResponse(f"/eco/{eco}/login?{urlencode({'return_to': back})}", 302)


@router.get("/eco/{eco}/device")
async def verification(request: Request, eco: str, rt: RuntimeDep) -> Response:
    typed = request.query_params.get("user_code")
    sid, ip = cookies.session_id(request), client_ip(request)
    ctx = await rt.tx(lambda tx: _page(rt, tx, eco, sid, typed, ip))
    if ctx is None:
        return _sign_in_first(request, eco, typed)
    return render(request, rt, "device.html", ctx, ctx.pop("status", 200))


@router.post("/eco/{eco}/device")
async def verification_submit(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    typed = str(form.get("user_code") or "")[:32]
    decision = form.get("decision")
    sid, ip = cookies.session_id(request), client_ip(request)
    if decision not in ("allow", "deny"):  # the code was typed: show what it would allow
        ctx = await rt.tx(lambda tx: _page(rt, tx, eco, sid, typed, ip))
        if ctx is None:
            return _sign_in_first(request, eco, typed)
        return render(request, rt, "device.html", ctx, ctx.pop("status", 200))
    allow = decision == "allow"
    outcome = await rt.tx(lambda tx: _decide(rt, tx, eco, sid, typed, allow, ip))
    if outcome is None:
        return _sign_in_first(request, eco, typed)
    if outcome in ("approved", "denied"):
        title = "Device connected" if allow else "Device refused"
        detail = "You can go back to your device." if allow else "The device gets no access."
        return render(request, rt, "message.html", {"title": title, "detail": detail})
    status = 429 if outcome.startswith("Too many") else 400
    return render(request, rt, "message.html", {"title": outcome}, status)
