"""The account page of a signed-in person: who they are, and their passkeys (add one,
rename or remove any).

Adding a passkey: ``static/passkeys.js`` asks for the creation options
(:mod:`identity.http.passkeys`), runs ``navigator.credentials.create()`` and posts the
answer with the name the person typed; renaming and removing are plain forms. Each form
carries the CSRF token; each change answers with the page again (303 after success).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import passkeys
from identity.domain.passkeys import Refusal
from identity.http.pages import csrf_ok, form_expired, render
from identity.http.passkeys import CREDENTIAL_MAX, relying_party, signed_in
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store.models import Person
from identity.store.transaction import Tx

router = APIRouter()


def _page(rt: IdentityRuntime, tx: Tx, eco: str, person: Person) -> dict[str, Any]:
    rt.enter(tx, eco)
    return {
        "eco": eco,
        "person": person,
        "passkeys": passkeys.list_passkeys(tx, person),
        "logout": f"/eco/{eco}/logout",
    }


@router.get("/eco/{eco}/account")
async def account(request: Request, eco: str, rt: RuntimeDep) -> Response:
    def work(tx: Tx) -> dict[str, Any] | None:
        rt.enter(tx, eco)
        person = signed_in(rt, tx, eco, request)
        return _page(rt, tx, eco, person) if person else None

    context = await rt.tx(work)
    if context is None:
        return RedirectResponse(f"/eco/{eco}/login", 302)
    return render(request, rt, "account.html", context)


def _back(eco: str) -> Response:
    return RedirectResponse(f"/eco/{eco}/account", 303)


@router.post("/eco/{eco}/passkeys")
async def add_passkey(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    credential = str(form.get("credential") or "")
    name = str(form.get("name") or "")

    def work(tx: Tx) -> dict[str, Any] | str | None:
        rp = relying_party(rt, tx, eco)
        person = signed_in(rt, tx, eco, request)
        if person is None:
            return None
        if not credential or len(credential) > CREDENTIAL_MAX:
            outcome: object = Refusal("malformed", "No passkey was sent; try again.")
        else:
            outcome = passkeys.register(tx, rp, person, credential, name)
        if isinstance(outcome, Refusal):
            return {**_page(rt, tx, eco, person), "error": outcome.detail}
        return "added"

    outcome = await rt.tx(work)
    if outcome is None:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    if isinstance(outcome, dict):
        return render(request, rt, "account.html", outcome, 400)
    return _back(eco)


async def _change(
    request: Request, eco: str, rt: IdentityRuntime, passkey_id: str, rename: bool
) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    name = str(form.get("name") or "")

    def work(tx: Tx) -> dict[str, Any] | bool | None:
        rt.enter(tx, eco)
        person = signed_in(rt, tx, eco, request)
        if person is None:
            return None
        if rename:
            done = passkeys.rename(tx, person, passkey_id, name)
        else:
            done = passkeys.remove(tx, person, passkey_id)
        if not done:
            return {**_page(rt, tx, eco, person), "error": "No such passkey of yours."}
        return True

    outcome = await rt.tx(work)
    if outcome is None:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    if isinstance(outcome, dict):
        return render(request, rt, "account.html", outcome, 404)
    return _back(eco)


@router.post("/eco/{eco}/passkeys/{passkey_id}/rename")
async def rename_passkey(request: Request, eco: str, passkey_id: str, rt: RuntimeDep) -> Response:
    return await _change(request, eco, rt, passkey_id, rename=True)


@router.post("/eco/{eco}/passkeys/{passkey_id}/remove")
async def remove_passkey(request: Request, eco: str, passkey_id: str, rt: RuntimeDep) -> Response:
    return await _change(request, eco, rt, passkey_id, rename=False)
