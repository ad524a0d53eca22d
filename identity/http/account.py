"""The account page: who is signed in, their passkeys (add one, rename or remove any),
their authenticator app (turn on, turn off) and recovery codes, and for the
ecosystem's operators, the second-factor policy form.

Adding a passkey: ``static/passkeys.js`` asks for the creation options
(:mod:`identity.http.passkeys`), runs ``navigator.credentials.create()`` and posts the
answer with the name the person typed; renaming and removing are plain forms (under
``passkeys_only`` the last usable passkey is not removed: it is the only way in).

Turning the app off needs a current code of it or the password (wrong ones count
against the account like a failed sign-in), and is refused while the policy that
applies to the person requires a second factor. The policy form is the admin API's
``PUT …/admin/second-factor`` for a signed-in operator (CSRF-protected).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from contracts.claims import Role
from identity.domain import authenticator, factors, passkeys
from identity.domain import signin as logic
from identity.domain.passkeys import Refusal
from identity.http import cookies
from identity.http.pages import csrf_ok, form_expired, render
from identity.http.passkeys import CREDENTIAL_MAX, relying_party
from identity.http.runtime import IdentityRuntime, RuntimeDep, client_ip
from identity.store import repository as repo
from identity.store.models import Person
from identity.store.transaction import Tx
from mesh.errors import MeshError

router = APIRouter()


def _person(rt: IdentityRuntime, tx: Tx, eco: str, request: Request) -> Person | None:
    rt.enter(tx, eco)
    user = logic.session_subject(tx, eco, cookies.session_id(request))
    return repo.get_person(tx.s, user.sub) if user else None


def _context(tx: Tx, eco: str, person: Person) -> dict[str, Any]:
    operator = Role.OPERATOR.value in person.roles
    return {
        "eco": eco,
        "person": person,
        "passkeys": passkeys.list_passkeys(tx, person),
        "enrolled": authenticator.enrolled(tx, person.id),
        "recovery_left": authenticator.recovery_left(tx, person.id),
        "policy": factors.policies(tx, eco) if operator else None,
        "partners": [p.slug for p in repo.list_partners(tx.s, eco)] if operator else [],
    }


def _page(rt: IdentityRuntime, tx: Tx, eco: str, request: Request) -> dict[str, Any] | None:
    person = _person(rt, tx, eco, request)
    return _context(tx, eco, person) if person else None


@router.get("/eco/{eco}/account")
async def account(request: Request, eco: str, rt: RuntimeDep) -> Response:
    context = await rt.tx(lambda tx: _page(rt, tx, eco, request))
    if context is None:
        return RedirectResponse(f"/eco/{eco}/login", 302)
    return render(request, rt, "account.html", context)


async def _again(
    request: Request, rt: IdentityRuntime, eco: str, error: str, status: int
) -> Response:
    context = await rt.tx(lambda tx: _page(rt, tx, eco, request))
    if context is None:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    return render(request, rt, "account.html", {**context, "error": error}, status)


def _proved(
    rt: IdentityRuntime, tx: Tx, eco: str, person: Person, ip: str, proof: str, password_ok: bool
) -> tuple[str, int]:
    """Whether the person proved it is them again (their password, or a code of their
    app: checked under the sign-in lockout, a wrong one counted): ("", 200) or why not."""
    keys = logic.throttle_keys(eco, person.username, ip)
    if logic.locked(tx, keys):
        return "Too many failed attempts. Try again later.", 429
    if not password_ok and authenticator.check(tx, rt.sealer, person, proof) is None:
        logic.record_failure(tx, rt.settings, *keys)
        return "That code or password is not right.", 401
    return "", 200


async def _with_proof(
    request: Request, rt: IdentityRuntime, eco: str, act: Callable[[Tx, Person], Response | str]
) -> Response:
    """Run ``act`` for the signed-in person once the form proved it is them (CSRF first);
    ``act`` answers a page, or a reason (409) to refuse."""
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    proof, ip = str(form.get("proof") or "")[:256], client_ip(request)
    person = await rt.tx(lambda tx: _person(rt, tx, eco, request))
    if person is None:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    password_ok = await asyncio.to_thread(rt.passwords.verify, person.password_hash, proof)

    def work(tx: Tx) -> tuple[str, int, Response | None]:
        error, status = _proved(rt, tx, eco, person, ip, proof, password_ok)
        if status != 200:
            return error, status, None
        done = act(tx, person)
        return (done, 409, None) if isinstance(done, str) else ("", 200, done)

    error, status, page = await rt.tx(work)
    return page or await _again(request, rt, eco, error, status)


@router.post("/eco/{eco}/account/totp/disable")
async def disable(request: Request, eco: str, rt: RuntimeDep) -> Response:
    """Turn the app off (and its recovery codes), unless the policy requires a factor."""

    def act(tx: Tx, person: Person) -> Response | str:
        if factors.policy_of(tx, person) != factors.OPTIONAL:
            return "Your organisation requires a second step at sign-in: it stays on."
        authenticator.disable(tx, person, person.id)
        return RedirectResponse(f"/eco/{eco}/account", 303)

    return await _with_proof(request, rt, eco, act)


@router.post("/eco/{eco}/account/recovery-codes")
async def new_recovery_codes(request: Request, eco: str, rt: RuntimeDep) -> Response:
    """Ten new recovery codes (the old ones stop working), shown once."""

    def act(tx: Tx, person: Person) -> Response | str:
        codes = authenticator.new_recovery_codes(tx, rt.sealer, person)
        if codes is None:
            return "There is no authenticator app to keep recovery codes for."
        context = {"codes": codes, "next": f"/eco/{eco}/account"}
        return render(request, rt, "recovery_codes.html", context)

    return await _with_proof(request, rt, eco, act)


@router.post("/eco/{eco}/account/second-factor-policy")
async def set_policy(request: Request, eco: str, rt: RuntimeDep) -> Response:
    """An operator sets the ecosystem's or a partner's policy from the account page."""
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    scope, policy = str(form.get("scope") or ""), str(form.get("policy") or "")

    def work(tx: Tx) -> tuple[str, int]:
        person = _person(rt, tx, eco, request)
        if person is None:
            return "", 401
        if Role.OPERATOR.value not in person.roles:
            return "Only the ecosystem's operators set the policy.", 403
        if scope:
            factors.set_partner_policy(tx, eco, scope, policy or None, person.id)
        else:
            factors.set_ecosystem_policy(tx, eco, policy, person.id)
        return "", 303

    try:
        error, status = await rt.tx(work)
    except MeshError as exc:
        error, status = exc.detail, 422
    if status == 401:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    if status != 303:
        return await _again(request, rt, eco, error, status)
    return RedirectResponse(f"/eco/{eco}/account", 303)


# --- passkeys ------------------------------------------------------------------------------


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
        person = _person(rt, tx, eco, request)
        if person is None:
            return None
        if not credential or len(credential) > CREDENTIAL_MAX:
            outcome: object = Refusal("malformed", "No passkey was sent; try again.")
        else:
            outcome = passkeys.register(tx, rp, person, credential, name)
        if isinstance(outcome, Refusal):
            return {**_context(tx, eco, person), "error": outcome.detail}
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
        person = _person(rt, tx, eco, request)
        if person is None:
            return None
        if not rename and _last_way_in(tx, person, passkey_id):
            error = "Your organisation allows passkey sign-in only: add another passkey first."
            return {**_context(tx, eco, person), "error": error, "status": 409}
        if rename:
            done = passkeys.rename(tx, person, passkey_id, name)
        else:
            done = passkeys.remove(tx, person, passkey_id)
        if not done:
            return {**_context(tx, eco, person), "error": "No such passkey of yours."}
        return True

    outcome = await rt.tx(work)
    if outcome is None:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    if isinstance(outcome, dict):
        return render(request, rt, "account.html", outcome, int(outcome.get("status", 404)))
    return _back(eco)


def _last_way_in(tx: Tx, person: Person, passkey_id: str) -> bool:
    """Whether removing ``passkey_id`` would leave a ``passkeys_only`` person no usable
    passkey to sign in with."""
    if factors.policy_of(tx, person) != factors.PASSKEYS_ONLY:
        return False
    usable = [p.id for p in passkeys.list_passkeys(tx, person) if p.cloned_at is None]
    return usable == [passkey_id]


@router.post("/eco/{eco}/passkeys/{passkey_id}/rename")
async def rename_passkey(request: Request, eco: str, passkey_id: str, rt: RuntimeDep) -> Response:
    return await _change(request, eco, rt, passkey_id, rename=True)


@router.post("/eco/{eco}/passkeys/{passkey_id}/remove")
async def remove_passkey(request: Request, eco: str, passkey_id: str, rt: RuntimeDep) -> Response:
    return await _change(request, eco, rt, passkey_id, rename=False)
