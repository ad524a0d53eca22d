"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import sessions
from identity.domain import signin as logic
from identity.domain.crypto import digest
from identity.domain.keys import ALGS
from identity.http import cookies
from identity.http.pages import csrf_ok, form_expired, render
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store import repository as repo
from identity.store.transaction import Tx
from mesh.jws import parse_compact

router = APIRouter()


def _hint_claims(rt: IdentityRuntime, tx: Tx, eco: str, hint: str | None) -> dict[str, Any] | None:
    """Claims of an ID token this issuer signed (expired ones are fine as hints)."""
    if not hint:
        return None
    try:  # the kit's parser first: PyJWT's json.loads fails on a nested header
        kid = parse_compact(hint).header.get("kid", "")
    except ValueError:
        return None
    if not isinstance(kid, str):
        return None
    try:
        key = rt.keys.public_key(tx, eco, kid)
        if key is None:
            return None
        claims: dict[str, Any] = jwt.decode(
            hint,
            key,
            algorithms=list(ALGS),
            issuer=rt.settings.issuer(eco),
            options={"verify_aud": False, "verify_exp": False},
        )
        return claims
    except jwt.PyJWTError:
        return None


def _plan(rt: IdentityRuntime, tx: Tx, eco: str, params: dict[str, str]) -> tuple[bool, str | None]:
    """(hint is valid, the registered post-logout redirect to use or None)."""
    rt.enter(tx, eco)
    claims = _hint_claims(rt, tx, eco, params.get("id_token_hint"))
    client_id = (claims or {}).get("aud") or params.get("client_id")
    target = params.get("post_logout_redirect_uri")
    if isinstance(client_id, list):
        client_id = client_id[0]
    client = repo.get_client(tx.s, eco, client_id) if isinstance(client_id, str) else None
    if not target or client is None or target not in client.post_logout_redirect_uris:
        target = None
    if target and params.get("state"):
        target += ("&" if "?" in target else "?") + urlencode({"state": params["state"]})
    return claims is not None, target


async def _finish(request: Request, eco: str, rt: IdentityRuntime, target: str | None) -> Response:
    sid = cookies.session_id(request)

    def end(tx: Tx) -> None:
        user = logic.session_subject(tx, eco, sid)
        if sid:  # its refresh tokens end with it; its clients are told (back-channel)
            sessions.end_session(tx, eco, digest(sid), "logout")
        if user:
            tx.audit(eco, "logout", actor=user.sub, target=user.sub, partner=user.partner)

    await rt.tx(end)
    rt.backchannel.wake()
    response: Response
    if target:
        response = RedirectResponse(target, 302)
    else:
        response = render(
            request,
            rt,
            "message.html",
            {"title": "You are signed out", "detail": "You can close this window."},
        )
    cookies.clear_session(response, eco)
    return response


@router.get("/eco/{eco}/logout")
async def logout(request: Request, eco: str, rt: RuntimeDep) -> Response:
    params = dict(request.query_params)
    valid_hint, target = await rt.tx(lambda tx: _plan(rt, tx, eco, params))
    if valid_hint:
        return await _finish(request, eco, rt, target)
    return render(request, rt, "logout.html", {"eco": eco, "params": params})


@router.post("/eco/{eco}/logout")
async def logout_confirmed(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    params = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    _valid, target = await rt.tx(lambda tx: _plan(rt, tx, eco, params))
    return await _finish(request, eco, rt, target)
