"""What follows a right password: a session at once, the second-factor page, enrolment
(when the policy requires a factor the person does not have yet), or a refusal
(``passkeys_only``); and whether an existing session is strong enough for a request."""

from __future__ import annotations

from identity.domain import factors
from identity.store.models import Person
from identity.store.transaction import Tx

DONE, CODE, ENROL, REFUSED = "done", "second-factor", "enrol", "refused"
PASSKEYS_ONLY_MESSAGE = (
    "Password sign-in is turned off for your account: sign in with a passkey instead."
)


def after_password(tx: Tx, eco: str, person: Person, ip: str) -> str:
    """The next step of ``person``'s sign-in, whose password was right."""
    policy = factors.policy_of(tx, person)
    have = factors.factors_of(tx, person)
    step = DONE
    if policy == factors.PASSKEYS_ONLY:
        step = REFUSED
    elif have:  # an app's code or a passkey
        step = CODE
    elif policy == factors.REQUIRED:
        step = ENROL
    if step == REFUSED:
        tx.audit(
            eco,
            "login.failed",
            target=person.username,
            outcome="failure",
            reason="password_not_allowed",
            ip=ip,
        )
    return step


def session_step(tx: Tx, person: Person, amr: list[str] | None, acr: str | None) -> str:
    """Whether a session (of ``amr``) serves a request asking for ``acr``: :data:`DONE`;
    or the person must prove a second factor (:data:`CODE`, or :data:`ENROL` without
    one) first; or sign in again another way (:data:`REFUSED`)."""
    policy = factors.policy_of(tx, person)
    if not factors.satisfied(policy, amr):
        if policy == factors.PASSKEYS_ONLY:
            return REFUSED
    elif factors.meets(amr, acr):
        return DONE
    return CODE if factors.factors_of(tx, person) else ENROL


def after_passkey(tx: Tx, person: Person, amr: list[str]) -> str:
    """The next step of a passkey sign-in (of ``amr``): :data:`DONE` when it meets the
    person's policy; else (``required``, no user verification) the second step."""
    return DONE if factors.satisfied(factors.policy_of(tx, person), amr) else CODE
