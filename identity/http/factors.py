"""The second step of a sign-in: the code page (a code of the authenticator app, a
recovery code, or a passkey) and enrolment of an authenticator app.

Whoever stands on these pages is either a half-done sign-in (the sealed pending cookie:
the password was right) or a signed-in person asked for more (step-up: a client wants
``urn:partnermesh:acr:mfa``, or the policy now requires a second factor). A right code
turns the first into a session and upgrades the second's; a wrong one counts against
the account and the address like a wrong password (the same lockout), and so does a
refused passkey. A passkey is offered to whoever has one: its options are asked for by
``static/passkeys.js`` (``X-CSRF-Token``, as the sign-in page's) and its answer posted
as a form. The second step must add a factor: what it proved joins the first step's
``amr`` (:func:`factors.combined`) and only a multi-factor result completes it. Forms
carry CSRF tokens, checked before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from contracts.errors import ErrorCode
from identity.domain import authenticator, factors, passkeys, pending, totp
from identity.domain import signin as logic
from identity.domain.passkeys import Refusal
from identity.domain.tokens import multi_factor
from identity.http import cookies
from identity.http.login import sign_in
from identity.http.pages import csrf_ok, form_expired, render, safe_return
from identity.http.passkeys import CREDENTIAL_MAX, options_response, relying_party, script_csrf
from identity.http.runtime import IdentityRuntime, RuntimeDep, client_ip
from identity.store import repository as repo
from identity.store.models import Person
from identity.store.transaction import Tx
from mesh.errors import MeshError

router = APIRouter()


@dataclass
class Visitor:
    """Who is on the page: a pending sign-in's person, or a session's (step-up)."""

    person: Person
    return_to: str
    sid: str | None = None  # set for a step-up of this session
    amr: tuple[str, ...] = ()  # what the sign-in (or the session) proved so far


@dataclass
class Result:
    kind: str  # gone | locked | wrong | weak | done
    return_to: str = ""
    sid: str | None = None  # a new session to set
    codes: list[str] = field(default_factory=list)  # recovery codes to show once


def visitor(rt: IdentityRuntime, tx: Tx, eco: str, request: Request, back: str) -> Visitor | None:
    rt.enter(tx, eco)
    half = pending.unseal(rt.sealer, cookies.pending(request), eco)
    if half is not None:
        person = repo.get_person(tx.s, half.person_id)
        if person is not None and person.active and person.eco == eco:
            return Visitor(person, half.return_to, amr=half.amr)
        return None
    sid = cookies.session_id(request)
    user = logic.session_subject(tx, eco, sid)
    person = repo.get_person(tx.s, user.sub) if user else None
    if person is None or user is None:
        return None
    return Visitor(person, safe_return(eco, back), sid, tuple(user.extra.get("amr") or ()))


def _back(request: Request) -> str:
    return request.query_params.get("return_to") or ""


def _finish(
    rt: IdentityRuntime, tx: Tx, eco: str, who: Visitor, kind: str, ip: str, amr: list[str]
) -> Result:
    """A second factor was proved (``amr``: the sign-in's with it): a session (pending
    sign-in) or a stronger one."""
    if who.sid is None:
        account = logic.throttle_keys(eco, who.person.username, ip)[0]
        sid = sign_in(rt, tx, eco, who.person, account, ip, who.return_to, amr)
        return Result("done", who.return_to, sid)
    logic.step_up(tx, who.sid, amr, who.return_to)
    tx.audit(
        eco,
        "login.step_up",
        actor=who.person.id,
        target=who.person.id,
        partner=who.person.partner,
        ip=ip,
        factor=kind,
    )
    return Result("done", who.return_to)


@dataclass(frozen=True)
class Attempt:
    """A second step that may be tried: who, from where, under which throttle keys."""

    who: Visitor
    ip: str
    keys: tuple[str, str]

    def refused(self, rt: IdentityRuntime, tx: Tx, eco: str, reason: str) -> Result:
        """A wrong second factor: counted against the account and address, audited."""
        logic.record_failure(tx, rt.settings, *self.keys)
        tx.audit(
            eco,
            "login.failed",
            target=self.who.person.username,
            outcome="failure",
            reason=reason,
            ip=self.ip,
        )
        return Result("wrong")


def _may_try(
    rt: IdentityRuntime, tx: Tx, eco: str, request: Request, back: str
) -> Attempt | Result:
    """The pending sign-in's second step, unless it is gone or its keys are locked."""
    who = visitor(rt, tx, eco, request, back)
    if who is None:
        return Result("gone")
    ip = client_ip(request)
    keys = logic.throttle_keys(eco, who.person.username, ip)
    if logic.locked(tx, keys):
        return Result("locked")
    return Attempt(who, ip, keys)


def _attempt(
    rt: IdentityRuntime, tx: Tx, eco: str, request: Request, back: str, code: str, enrol: bool
) -> Result:
    at = _may_try(rt, tx, eco, request, back)
    if isinstance(at, Result):
        return at
    who, ip = at.who, at.ip
    if enrol:
        codes = authenticator.confirm(tx, rt.sealer, who.person, code)
        proved = authenticator.BY_APP if codes is not None else None
    else:
        codes, proved = None, authenticator.check(tx, rt.sealer, who.person, code)
    if proved is None:
        return at.refused(rt, tx, eco, "bad_second_factor")
    amr = factors.combined(who.amr or (factors.PWD,), (factors.OTP,))
    result = _finish(rt, tx, eco, who, proved, ip, amr)
    result.codes = codes or []
    return result


_ERRORS = {
    "locked": ("Too many failed attempts. Try again later.", 429),
    "wrong": ("That code is not right, or was used already.", 401),
    "weak": (
        "This passkey did not verify you (no PIN or biometric), so it is no second step "
        "here: use a code from your app, or a passkey that asks for your screen lock.",
        401,
    ),
}


def _answer(
    request: Request,
    rt: IdentityRuntime,
    eco: str,
    result: Result,
    page: str,
    context: dict[str, object],
) -> Response:
    if result.kind == "gone":
        return RedirectResponse(f"/eco/{eco}/login", 303)
    if result.kind in _ERRORS:
        error, status = _ERRORS[result.kind]
        return render(request, rt, page, {**context, "error": error}, status)
    if result.codes:
        response = render(
            request, rt, "recovery_codes.html", {"codes": result.codes, "next": result.return_to}
        )
    else:
        response = RedirectResponse(result.return_to, 303)
    cookies.clear_pending(response, eco)
    if result.sid:
        cookies.set_session(response, rt.settings, eco, result.sid)
    return response


# --- the code page -------------------------------------------------------------------------


@router.get("/eco/{eco}/login/second-factor")
async def code_page(request: Request, eco: str, rt: RuntimeDep) -> Response:
    context = await rt.tx(lambda tx: _code_context(rt, tx, eco, request, _back(request)))
    if context is None:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    if not context["totp"] and not context["passkey"]:
        return RedirectResponse(str(context["enrol"]), 303)
    return render(request, rt, "second_factor.html", context)


def _code_context(
    rt: IdentityRuntime, tx: Tx, eco: str, request: Request, back: str
) -> dict[str, object] | None:
    """The code page's context: which factors the person can prove here."""
    who = visitor(rt, tx, eco, request, back)
    if who is None:
        return None
    has = factors.factors_of(tx, who.person)
    q = _q(who.return_to)
    return {
        "action": f"/eco/{eco}/login/second-factor?return_to={q}",
        "totp": factors.TOTP in has,
        "passkey": factors.PASSKEY in has,
        "passkey_action": f"/eco/{eco}/login/second-factor/passkey?return_to={q}",
        "passkey_options": f"/eco/{eco}/login/second-factor/passkey-options",
        "enrol": f"/eco/{eco}/login/enrol?return_to={q}",
    }


def _q(value: str) -> str:
    return quote(value, safe="")


@router.post("/eco/{eco}/login/second-factor")
async def code_submit(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    code, back = str(form.get("code") or "")[:64], _back(request)
    result = await rt.tx(lambda tx: _attempt(rt, tx, eco, request, back, code, enrol=False))
    return await _code_answer(request, rt, eco, back, result)


async def _code_answer(
    request: Request, rt: IdentityRuntime, eco: str, back: str, result: Result
) -> Response:
    context: dict[str, object] = {}
    if result.kind in _ERRORS:
        found = await rt.tx(lambda tx: _code_context(rt, tx, eco, request, back))
        context = found or {}
    return _answer(request, rt, eco, result, "second_factor.html", context)


# --- a passkey as the second step ----------------------------------------------------------


@router.post("/eco/{eco}/login/second-factor/passkey-options")
async def passkey_options(request: Request, eco: str, rt: RuntimeDep) -> Response:
    """The request options for the person's own passkeys (the challenge bound to them)."""
    script_csrf(request, rt)

    def work(tx: Tx) -> str:
        rp = relying_party(rt, tx, eco)
        who = visitor(rt, tx, eco, request, "")
        if who is None:
            raise MeshError(ErrorCode.UNAUTHENTICATED, "sign in with your password first")
        return passkeys.authentication_options(tx, rp, eco, who.person)

    return options_response(await rt.tx(work))


@router.post("/eco/{eco}/login/second-factor/passkey")
async def passkey_submit(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    credential, back = str(form.get("credential") or ""), _back(request)
    if len(credential) > CREDENTIAL_MAX:
        credential = ""  # refused below as unreadable, and counted

    def work(tx: Tx) -> Result:
        rp = relying_party(rt, tx, eco)
        at = _may_try(rt, tx, eco, request, back)
        if isinstance(at, Result):
            return at
        use = passkeys.authenticate(tx, rp, eco, credential, at.who.person)
        if isinstance(use, Refusal):
            return at.refused(rt, tx, eco, f"passkey_{use.reason}")
        amr = factors.combined(at.who.amr or (factors.PWD,), use.amr())
        if not multi_factor(amr):  # the same single factor again adds nothing
            return Result("weak")
        return _finish(rt, tx, eco, at.who, factors.PASSKEY, at.ip, amr)

    result = await rt.tx(work)
    return await _code_answer(request, rt, eco, back, result)


# --- enrolment ------------------------------------------------------------------------------


def _enrolment(rt: IdentityRuntime, tx: Tx, eco: str, who: Visitor) -> dict[str, object] | None:
    """The page's context: the key of the enrolment in progress (made now if none)."""
    if authenticator.enrolled(tx, who.person.id):
        return None
    key = authenticator.pending_key(tx, rt.sealer, who.person.id)
    key = key or authenticator.begin(tx, rt.sealer, who.person)
    name = rt.enter(tx, eco).eco.name
    secret = totp.b32(key)
    uri = totp.otpauth_uri(name, who.person.username, key)
    return {
        "action": f"/eco/{eco}/login/enrol?return_to={_q(who.return_to)}",
        "uri": uri,
        "qr": totp.qr_svg(uri),
        "key": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "required": who.sid is None,
    }


@router.get("/eco/{eco}/login/enrol")
async def enrol_page(request: Request, eco: str, rt: RuntimeDep) -> Response:
    def read(tx: Tx) -> tuple[Visitor | None, dict[str, object] | None]:
        who = visitor(rt, tx, eco, request, _back(request))
        return who, _enrolment(rt, tx, eco, who) if who else None

    who, context = await rt.tx(read)
    if who is None:
        return RedirectResponse(f"/eco/{eco}/login", 303)
    if context is None:  # already has one: prove it instead
        return RedirectResponse(
            f"/eco/{eco}/login/second-factor?return_to={_q(who.return_to)}", 303
        )
    return render(request, rt, "enrol.html", context)


@router.post("/eco/{eco}/login/enrol")
async def enrol_submit(request: Request, eco: str, rt: RuntimeDep) -> Response:
    form = await request.form()
    if not csrf_ok(request, rt, str(form.get("csrf_token") or "")):
        return form_expired(request, rt)
    code, back = str(form.get("code") or "")[:64], _back(request)
    result = await rt.tx(lambda tx: _attempt(rt, tx, eco, request, back, code, enrol=True))
    context: dict[str, object] = {}
    if result.kind in ("wrong", "locked"):
        who_ctx = await rt.tx(lambda tx: _again(rt, tx, eco, request, back))
        context = who_ctx or {}
    return _answer(request, rt, eco, result, "enrol.html", context)


def _again(
    rt: IdentityRuntime, tx: Tx, eco: str, request: Request, back: str
) -> dict[str, object] | None:
    who = visitor(rt, tx, eco, request, back)
    return _enrolment(rt, tx, eco, who) if who else None
