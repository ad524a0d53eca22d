"""Sign-in with a username and password.

A sign-in is checked in this order: the CSRF token first, before anything is read (a
forged or stale form costs no database work and learns nothing), then the lockout, then
the password (argon2id, off the event loop, also for an unknown username, so the time
taken tells nothing), then the session starts. What is read is read in one transaction;
a failure and a success each write theirs, with the audit event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import factors, pending, second_factor
from identity.domain import signin as logic
from identity.http import cookies
from identity.http.pages import csrf_ok, render, safe_return
from identity.http.runtime import IdentityRuntime, RuntimeDep, client_ip
from identity.store import repository as repo
from identity.store.models import Person
from identity.store.transaction import Tx

router = APIRouter()


@dataclass(frozen=True)
class LoginForm:
    """What the sign-in form sent."""

    username: str
    password: str
    return_to: str
    csrf_token: str


@dataclass(frozen=True)
class Attempt:
    """What a sign-in reads: the page's context, whether it is locked out, the person."""

    eco_name: str
    upstreams: list[dict[str, str]]
    locked: bool
    person: Person | None
    password_allowed: bool = True  # False under passkeys_only


async def read_form(request: Request, eco: str) -> LoginForm:
    form = await request.form()
    return LoginForm(
        username=str(form.get("username") or "").strip(),
        password=str(form.get("password") or ""),
        return_to=safe_return(eco, str(form.get("return_to") or "")),
        csrf_token=str(form.get("csrf_token") or ""),
    )


@router.get("/eco/{eco}/login")
async def login_page(request: Request, eco: str, rt: RuntimeDep) -> Response:
    name, upstreams = await rt.tx(lambda tx: login_context(rt, tx, eco))
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


def login_context(rt: IdentityRuntime, tx: Tx, eco: str) -> tuple[str, list[dict[str, str]]]:
    call = rt.enter(tx, eco)
    ups = [{"alias": u.alias, "name": u.name} for u in repo.list_upstreams(tx.s, eco)]
    return call.eco.name, ups


@router.post("/eco/{eco}/login")
async def login_submit(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await read_form(request, eco)
    if not csrf_ok(request, rt, form.csrf_token):  # before anything is read
        return _again(request, rt, eco, form, eco, [], "The form expired; try again.", 403)
    ip = client_ip(request)
    keys = logic.throttle_keys(eco, form.username, ip)
    seen = await rt.tx(lambda tx: _attempt(rt, tx, eco, form.username, keys))
    again = partial(_again, request, rt, eco, form, seen.eco_name, seen.upstreams)
    if seen.locked:
        await rt.tx(lambda tx: _audit_failure(tx, eco, form.username, ip, "locked"))
        return again("Too many failed attempts. Try again later.", 429)
    person = await _verified(rt, seen.person, form.password)
    if person is None:
        await rt.tx(lambda tx: _record_failure(rt, tx, eco, form.username, keys, ip))
        # under passkeys_only, the same refusal whether the password was right or not
        if not seen.password_allowed:
            return again(second_factor.PASSKEYS_ONLY_MESSAGE, 403)
        return again("Wrong username or password.", 401)
    step = await rt.tx(lambda tx: second_factor.after_password(tx, eco, person, ip))
    if step == second_factor.REFUSED:
        return again(second_factor.PASSKEYS_ONLY_MESSAGE, 403)
    if step != second_factor.DONE:  # a second factor (or its enrolment) is due
        response = RedirectResponse(f"/eco/{eco}/login/{step}", 303)
        sealed = pending.seal(rt.sealer, pending.start(eco, person.id, form.return_to))
        cookies.set_pending(response, rt.settings, eco, sealed)
        return response
    amr = factors.amr_with(None)
    sid = await rt.tx(lambda tx: sign_in(rt, tx, eco, person, keys[0], ip, form.return_to, amr))
    response = RedirectResponse(form.return_to, 303)
    cookies.set_session(response, rt.settings, eco, sid)
    cookies.clear_pending(response, eco)  # an earlier half-done sign-in is over
    return response


def _again(
    request: Request,
    rt: IdentityRuntime,
    eco: str,
    form: LoginForm,
    eco_name: str,
    upstreams: list[dict[str, str]],
    error: str,
    status: int,
) -> Response:
    """The sign-in form once more, with what was typed (but the password) and why."""
    context = {
        "eco": eco,
        "eco_name": eco_name,
        "upstreams": upstreams,
        "return_to": form.return_to,
        "username": form.username,
        "error": error,
    }
    return render(request, rt, "login.html", context, status)


def _attempt(
    rt: IdentityRuntime, tx: Tx, eco: str, username: str, keys: tuple[str, str]
) -> Attempt:
    name, upstreams = login_context(rt, tx, eco)
    person = logic.find_person(tx, eco, username)
    allowed = factors.password_allowed(tx, eco, person)
    return Attempt(name, upstreams, logic.locked(tx, keys), person, allowed)


async def _verified(rt: IdentityRuntime, person: Person | None, password: str) -> Person | None:
    """``person`` if ``password`` is theirs (checked even without a person: same time)."""
    stored = person.password_hash if person else None
    ok = await asyncio.to_thread(rt.passwords.verify, stored, password)
    return person if ok else None


def _audit_failure(tx: Tx, eco: str, username: str, ip: str, reason: str) -> None:
    tx.audit(eco, "login.failed", target=username, outcome="failure", reason=reason, ip=ip)


def _record_failure(
    rt: IdentityRuntime, tx: Tx, eco: str, username: str, keys: tuple[str, str], ip: str
) -> None:
    logic.record_failure(tx, rt.settings, *keys)
    _audit_failure(tx, eco, username, ip, "bad_credentials")


def sign_in(
    rt: IdentityRuntime,
    tx: Tx,
    eco: str,
    person: Person,
    account: str,
    ip: str,
    return_to: str,
    amr: list[str],
) -> str:
    """The session of a complete sign-in (password, and a second factor where due)."""
    repo.clear_throttle(tx.s, account)  # the account's failures; the address keeps its own
    sid, _ = logic.start_session(tx, rt.settings, person, return_to, amr)
    tx.audit(
        eco,
        "login.succeeded",
        actor=person.id,
        target=person.id,
        partner=person.partner,
        ip=ip,
        amr=amr,
    )
    return sid
