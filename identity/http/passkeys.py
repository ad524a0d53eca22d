"""Passkeys at the edge: the ceremonies' options (JSON, for ``static/passkeys.js``) and
"Sign in with a passkey".

The options endpoints are ``POST`` with the page's CSRF token in ``X-CSRF-Token`` (a
form's double submit, sent by script): each hands out one challenge, kept server-side.
The browser's answer comes back as an ordinary form post (``credential``, its JSON), so
the outcome is a page or a redirect with the session cookie, as the password path's.
A refused passkey is audited and counts against the address like a wrong password.
A passkey sign-in must meet the person's second-factor policy: one without user
verification under ``required`` goes on to the second step (:mod:`identity.http.factors`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from contracts.errors import ErrorCode
from identity.domain import passkeys, pending, second_factor, signin
from identity.domain.passkeys import PasskeyUse, Refusal, RelyingParty
from identity.http import cookies
from identity.http.login import login_context
from identity.http.pages import csrf_ok, render, safe_return
from identity.http.runtime import IdentityRuntime, RuntimeDep, client_ip
from identity.store import repository as repo
from identity.store.models import Person
from identity.store.transaction import Tx
from mesh.errors import MeshError

router = APIRouter()

CSRF_HEADER = "x-csrf-token"
CREDENTIAL_MAX = 64 * 1024  # a credential's JSON is a few kB; anything far bigger is refused
_JSON_HEADERS = {"Cache-Control": "no-store"}


def relying_party(rt: IdentityRuntime, tx: Tx, eco: str) -> RelyingParty:
    """The ecosystem's issuer as a WebAuthn relying party (404 for an unknown one)."""
    call = rt.enter(tx, eco)
    return RelyingParty.of(call.issuer, call.eco.name)


def signed_in(rt: IdentityRuntime, tx: Tx, eco: str, request: Request) -> Person | None:
    """The person whose session this browser holds in ``eco``, if any."""
    subject = signin.session_subject(tx, eco, cookies.session_id(request))
    return repo.get_person(tx.s, subject.sub) if subject else None


def script_csrf(request: Request, rt: IdentityRuntime) -> None:
    if not csrf_ok(request, rt, request.headers.get(CSRF_HEADER)):
        raise MeshError(ErrorCode.FORBIDDEN, "the page expired; reload it and try again")


def options_response(body: str) -> Response:
    return Response(body, media_type="application/json", headers=_JSON_HEADERS)


@router.post("/eco/{eco}/passkeys/registration-options")
async def registration_options(request: Request, eco: str, rt: RuntimeDep) -> Response:
    script_csrf(request, rt)

    def work(tx: Tx) -> str:
        rp = relying_party(rt, tx, eco)
        person = signed_in(rt, tx, eco, request)
        if person is None:
            raise MeshError(ErrorCode.UNAUTHENTICATED, "sign in to add a passkey")
        return passkeys.registration_options(tx, rp, person)

    return options_response(await rt.tx(work))


@router.post("/eco/{eco}/passkeys/authentication-options")
async def authentication_options(request: Request, eco: str, rt: RuntimeDep) -> Response:
    script_csrf(request, rt)

    def work(tx: Tx) -> str:
        return passkeys.authentication_options(tx, relying_party(rt, tx, eco), eco)

    return options_response(await rt.tx(work))


@dataclass(frozen=True)
class Again:
    """The sign-in page once more: why, with what status, and the page's context."""

    error: str
    status: int
    eco_name: str
    upstreams: list[dict[str, str]]


@dataclass(frozen=True)
class Halfway:
    """A passkey sign-in that proved less than the person's policy asks (``required``,
    no user verification): the second step follows, as after a password."""

    person_id: str
    amr: tuple[str, ...]


@router.post("/eco/{eco}/login/passkey")
async def passkey_sign_in(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    return_to = safe_return(eco, str(form.get("return_to") or ""))
    credential = str(form.get("credential") or "")
    ip = client_ip(request)
    address = signin.throttle_keys(eco, "", ip)[1]

    def again(tx: Tx, error: str, status: int) -> Again:
        name, upstreams = login_context(rt, tx, eco)
        return Again(error, status, name, upstreams)

    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):  # before anything is read
        page = await rt.tx(again, "The form expired; try again.", 403)
        return _login_page(request, rt, eco, return_to, page)
    if not credential or len(credential) > CREDENTIAL_MAX:
        page = await rt.tx(again, "No passkey was sent; try again.", 400)
        return _login_page(request, rt, eco, return_to, page)

    def work(tx: Tx) -> str | Again | Halfway:
        rp = relying_party(rt, tx, eco)
        if signin.locked(tx, (address,)):
            tx.audit(eco, "login.failed", outcome="failure", reason="locked", ip=ip)
            return again(tx, "Too many failed attempts. Try again later.", 429)
        use = passkeys.authenticate(tx, rp, eco, credential)
        if isinstance(use, Refusal):
            signin.record_address_failure(tx, rt.settings, address)
            reason = f"passkey_{use.reason}"
            tx.audit(eco, "login.failed", outcome="failure", reason=reason, ip=ip)
            return again(tx, use.detail, 401)
        if second_factor.after_passkey(tx, use.person, use.amr()) != second_factor.DONE:
            return Halfway(use.person.id, tuple(use.amr()))
        return _sign_in(rt, tx, eco, use, ip, return_to)

    outcome = await rt.tx(work)
    if isinstance(outcome, Again):
        return _login_page(request, rt, eco, return_to, outcome)
    if isinstance(outcome, Halfway):  # the policy asks for more than this passkey proved
        response = RedirectResponse(f"/eco/{eco}/login/{second_factor.CODE}", 303)
        half = pending.start(eco, outcome.person_id, return_to, outcome.amr)
        cookies.set_pending(response, rt.settings, eco, pending.seal(rt.sealer, half))
        return response
    response = RedirectResponse(return_to, 303)
    cookies.set_session(response, rt.settings, eco, outcome)
    cookies.clear_pending(response, eco)  # an earlier half-done sign-in is over
    return response


def _sign_in(
    rt: IdentityRuntime, tx: Tx, eco: str, use: PasskeyUse, ip: str, return_to: str
) -> str:
    person = use.person
    sid, _ = signin.start_session(tx, rt.settings, person, return_to, amr=use.amr())
    tx.audit(
        eco,
        "login.succeeded",
        actor=person.id,
        target=person.id,
        partner=person.partner,
        ip=ip,
        method="passkey",
        passkey=use.passkey.id,
    )
    return sid


def _login_page(
    request: Request, rt: IdentityRuntime, eco: str, return_to: str, page: Again
) -> Response:
    context = {
        "eco": eco,
        "eco_name": page.eco_name,
        "upstreams": page.upstreams,
        "return_to": return_to,
        "passkey_error": page.error,
    }
    return render(request, rt, "login.html", context, page.status)
