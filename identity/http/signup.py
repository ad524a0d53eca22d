"""Self sign-up under the ecosystem's membership policy.

``open``: anyone may join the ecosystem's default partner as a member. ``invite``: an
invitation code fixes the partner and roles. ``claims``: no local sign-up; people are
admitted through a brokered provider when their upstream claims pass the admission rule.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import directory, factors
from identity.domain import signin as logic
from identity.domain.crypto import digest
from identity.http import cookies
from identity.http.pages import csrf_ok, render, safe_return
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store import repository as repo
from identity.store.transaction import Tx
from mesh.errors import MeshError

router = APIRouter()
MIN_PASSWORD = 12


def _policy(rt: IdentityRuntime, tx: Tx, eco: str) -> tuple[str, str]:
    call = rt.enter(tx, eco)
    return call.eco.membership_policy, call.eco.name


def _invited(rt: IdentityRuntime, tx: Tx, eco: str, code: str) -> dict[str, str]:
    """The company and e-mail an unused invitation names, to greet the invitee with."""
    rt.enter(tx, eco)
    inv = repo.find_invitation(tx.s, digest(code)) if code else None
    if inv is None or inv.used or inv.eco != eco:
        return {}
    partner = repo.get_partner(tx.s, eco, inv.partner)
    return {"company": partner.name if partner else inv.partner, "email": inv.email or ""}


@router.get("/eco/{eco}/signup")
async def signup_page(request: Request, eco: str, rt: RuntimeDep) -> Response:
    policy, name = await rt.tx(lambda tx: _policy(rt, tx, eco))
    invitation = request.query_params.get("invitation", "")
    if policy == "claims" or (policy == "invite" and not invitation):
        return render(
            request,
            rt,
            "message.html",
            {"title": "Sign-up is by admission only", "detail": _closed(policy)},
            403,
        )
    # return_to: where to continue once signed up (an authorization request of a client that
    # sent the invitee here), only ever a path of this issuer
    back = request.query_params.get("return_to")
    page = {"eco": eco, "eco_name": name, "invitation": invitation}
    page.update(await rt.tx(lambda tx: _invited(rt, tx, eco, invitation)))
    return render(
        request, rt, "signup.html", {**page, "return_to": safe_return(eco, back) if back else ""}
    )


def _closed(policy: str) -> str:
    if policy == "claims":
        return "Sign in with your company's account; this ecosystem admits members by their claims."
    return "This ecosystem is invite-only. Ask its operator for an invitation."


def join(tx: Tx, eco: str, form: dict[str, str], password_hash: str) -> tuple[Any, str | None]:
    """Create the person under the policy; returns (person, error)."""
    row = directory.ecosystem(tx, eco)
    partner, roles = row.default_partner, ["member"]
    if row.membership_policy == "claims":
        return None, _closed("claims")
    if row.membership_policy == "invite":
        inv = repo.get_invitation(tx.s, digest(form.get("invitation", "")))
        expires = (
            inv.expires_at.replace(tzinfo=UTC)
            if inv and not inv.expires_at.tzinfo
            else (inv.expires_at if inv else None)
        )
        if inv is None or inv.used or inv.eco != eco or not expires or expires < datetime.now(UTC):
            return None, "This invitation is not valid (used, expired or unknown)."
        inv.used = True
        partner, roles = inv.partner, inv.roles
    if not partner:
        return None, "This ecosystem has no partner for self sign-up yet."
    person = directory.create_person(
        tx,
        eco,
        form["username"],
        partner,
        form["name"],
        roles,
        password_hash,
        form.get("email") or None,
        actor="signup",
    )
    return person, None


@router.post("/eco/{eco}/signup")
async def signup_submit(request: Request, eco: str, rt: RuntimeDep) -> Response:
    raw = await request.form()
    form = {k: str(v).strip() if k != "password" else str(v) for k, v in raw.items()}
    policy, name = await rt.tx(lambda tx: _policy(rt, tx, eco))
    page = {
        "eco": eco,
        "eco_name": name,
        "invitation": form.get("invitation", ""),
        "username": form.get("username", ""),
        "name": form.get("name", ""),
        "return_to": safe_return(eco, form["return_to"]) if form.get("return_to") else "",
    }
    if not csrf_ok(request, rt, form.get("csrf_token")):
        return render(request, rt, "signup.html", {**page, "error": "The form expired."}, 403)
    if len(form.get("password", "")) < MIN_PASSWORD or not form.get("name"):
        return render(
            request,
            rt,
            "signup.html",
            {
                **page,
                "error": f"Give your name and a password of at least {MIN_PASSWORD} characters.",
            },
            422,
        )
    hashed = await asyncio.to_thread(rt.passwords.hash, form["password"])

    def work(tx: Tx) -> tuple[str | None, str | None]:
        person, error = join(tx, eco, form, hashed)
        if error:
            return None, error
        sid, _ = logic.start_session(tx, rt.settings, person, amr=factors.amr_with(None))
        return sid, None

    try:
        sid, error = await rt.tx(work)
    except MeshError as exc:
        sid, error = None, exc.detail
    if error or not sid:
        return render(
            request,
            rt,
            "signup.html",
            {**page, "error": error},
            403 if policy != "open" and "invitation" in (error or "") else 422,
        )
    response = RedirectResponse(page["return_to"] or f"/eco/{eco}/account", 303)
    cookies.set_session(response, rt.settings, eco, sid)
    return response
