"""Sign-in (authorization code + PKCE), the callback that opens a session, and sign-out."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from mesh.consttime import same
from portal.oidc import LoginError, pkce_pair, unverified_claims
from portal.sessions import LOGIN_TTL, cookie_name
from portal.settings import PortalSettings
from portal.views.installable import forget_push
from portal.web import CtxDep, portal_of, render, safe_next

router = APIRouter(prefix="/auth")
LOGIN_COOKIE = "pm_portal_login"


def _failed(request: Request, message: str, status: int = 400) -> Response:
    return render(
        request,
        "error.html",
        None,
        status=status,
        title="Sign-in failed",
        message=message,
        retry=True,
    )


@router.get("/login")
async def login(request: Request, next: str | None = None) -> Response:
    return await start_login(request, safe_next(next))


async def start_login(request: Request, return_to: str, invitation: str = "") -> Response:
    """Send the browser to identity's authorization endpoint; with an ``invitation``, to its
    sign-up page first, which continues to the same authorization request once the account
    exists (so the invitee lands here signed in, on ``return_to``)."""
    portal = portal_of(request)
    if not portal.oidc.client_secret:
        portal.oidc.client_secret = portal.settings.resolved_client_secret()
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(16)
    state = await portal.store.begin_login(verifier, nonce, return_to)
    try:
        url = await portal.oidc.authorize_url(state, nonce, challenge, portal.settings.scope)
    except LoginError as exc:
        return _failed(request, str(exc), 503)
    if invitation:
        parts = urlsplit(url)
        query = {"invitation": invitation, "return_to": f"{parts.path}?{parts.query}"}
        issuer = parts.path.rsplit("/", 1)[0]  # the endpoint is <issuer>/authorize
        url = f"{parts.scheme}://{parts.netloc}{issuer}/signup?{urlencode(query)}"
    response = RedirectResponse(url, status_code=303)
    # Binds the login to this browser: a callback link started elsewhere (login CSRF,
    # someone else's code) does not sign this browser in.
    response.set_cookie(
        LOGIN_COOKIE,
        state,
        httponly=True,
        samesite="lax",
        secure=portal.settings.secure_cookies,
        path="/auth/",
        max_age=int(LOGIN_TTL),
    )
    return response


@router.get("/callback")
async def callback(
    request: Request, state: str = "", code: str = "", error: str = "", iss: str | None = None
) -> Response:
    portal = portal_of(request)
    if not state or not same(request.cookies.get(LOGIN_COOKIE, ""), state):
        return _failed(request, "This sign-in was not started in this browser. Try again.")
    pending = await portal.store.finish_login(state)
    if pending is None:
        return _failed(request, "This sign-in link has expired or was already used.")
    try:
        issuer_ok = await portal.oidc.response_issuer_ok(iss)
    except LoginError as exc:
        return _failed(request, f"Sign-in could not finish: {exc}.", status=502)
    if not issuer_ok:
        return _failed(request, "This answer did not come from our identity provider.")
    if error or not code:
        return _failed(
            request, f"The identity provider did not sign you in ({error or 'no code'})."
        )
    try:
        tokens = await portal.oidc.exchange_code(code, str(pending["verifier"]))
        id_claims = await portal.oidc.verify_id_token(tokens.id_token or "", str(pending["nonce"]))
    except LoginError as exc:
        return _failed(request, str(exc), 502)
    claims = unverified_claims(tokens.access_token)
    if claims.get("eco") != portal.settings.eco or claims.get("sub") != id_claims.get("sub"):
        return _failed(request, "The tokens do not belong to this ecosystem or this person.")
    name = str(id_claims.get("name") or id_claims.get("preferred_username") or claims["sub"])
    cookie, _session = await portal.store.create(
        portal.settings.eco,
        str(claims["sub"]),
        name,
        claims.get("partner"),
        [str(r) for r in claims.get("roles", [])],
        tokens,
        idp_sid=id_claims.get("sid") if isinstance(id_claims.get("sid"), str) else None,
    )
    response = RedirectResponse(str(pending["return_to"]), status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/auth/")
    set_session_cookie(response, portal.settings, cookie)
    return response


@router.post("/backchannel-logout")
async def backchannel_logout(request: Request) -> Response:
    """OpenID Connect Back-Channel Logout 1.0: identity says a login session ended; the
    portal sessions it opened end too. 200 when done, 400 for a token not to be trusted
    (forged, expired, replayed, with a nonce, …)."""
    portal = portal_of(request)
    headers = {"Cache-Control": "no-store"}
    form = await request.form()
    token = form.get("logout_token")
    if not isinstance(token, str) or not token or len(token) > 8192:
        return JSONResponse({"error": "invalid_request"}, 400, headers)
    try:
        claims = await portal.oidc.verify_logout_token(token)
    except LoginError as exc:
        body = {"error": "invalid_request", "error_description": str(exc)}
        return JSONResponse(body, 400, headers)
    ended = await portal.store.end_by_logout_token(portal.settings.eco, claims)
    if ended is None:
        body = {"error": "invalid_request", "error_description": "logout token replayed"}
        return JSONResponse(body, 400, headers)
    return Response(status_code=200, headers=headers)


def set_session_cookie(response: Response, settings: PortalSettings, value: str) -> None:
    """HttpOnly (no script reads it), SameSite=Lax (no cross-site posts), Secure under TLS."""
    response.set_cookie(
        cookie_name(settings.secure_cookies),
        value,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
        max_age=settings.session_idle_seconds,
    )


@router.post("/logout")
async def logout(request: Request, ctx: CtxDep) -> Response:
    """Ends the session; this browser's push subscription (which ``portal.js`` names in the
    form) is removed first, with the session's token. The page signed out clears the
    offline cache and unsubscribes in the browser (``portal.js``)."""
    portal = ctx.portal
    push = (await request.form()).get("push")
    await forget_push(ctx, push if isinstance(push, str) else "")
    id_token = ctx.session.tokens.id_token if ctx.session.tokens else None
    await portal.store.destroy(ctx.session)
    home = portal.settings.public_url.rstrip("/") + "/"
    target = await portal.oidc.end_session_url(id_token, home) or "/"
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(
        cookie_name(portal.settings.secure_cookies),
        path="/",
        secure=portal.settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response
