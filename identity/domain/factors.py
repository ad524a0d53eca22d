"""Which factors a person has, what a sign-in proved (RFC 8176 ``amr``, our ``acr``),
and the second-factor policy of an ecosystem and its partners.

Factors plug in here: each kind registers a source (:func:`register`) that says whether
a person has one and the ``amr`` values a sign-in with it adds. The authenticator app
(``totp``: ``otp``) and passkeys (``passkey``: ``hwk``, and ``user`` when the
authenticator verified the user) register below. A sign-in is multi-factor when its
``amr`` holds two factors (:func:`identity.domain.tokens.multi_factor`): a password and
a code or passkey, or a passkey with user verification on its own.

Policy, loosest to strictest: ``optional`` (a person may add a second factor and is
then asked for it), ``required`` (a sign-in must be multi-factor: a password needs a
second factor, a person without one enrols before getting a session; a passkey with
user verification is enough alone), ``passkeys_only`` (no password sign-in at all; a
passkey sign-in satisfies it). A partner's policy may only be stricter than its
ecosystem's; the policy that applies to a person is the stricter of the two.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from identity.domain.directory import ecosystem, invalid_field
from identity.domain.tokens import ACR_MFA, ACR_PWD, multi_factor
from identity.store import factor_repository as factor_repo
from identity.store import passkey_repository as passkey_repo
from identity.store import repository as repo
from identity.store.models import Person
from identity.store.transaction import Tx
from mesh.errors import not_found

OPTIONAL, REQUIRED, PASSKEYS_ONLY = "optional", "required", "passkeys_only"
POLICIES = (OPTIONAL, REQUIRED, PASSKEYS_ONLY)  # loosest first

# RFC 8176 authentication method reference values
PWD, OTP, MFA, HWK, USER = "pwd", "otp", "mfa", "hwk", "user"
ACR_VALUES = (ACR_PWD, ACR_MFA)  # weakest first


@dataclass(frozen=True)
class FactorKind:
    """A kind of second factor: its name, the amr a sign-in with it adds, and whether a
    person has one (confirmed, usable)."""

    name: str
    amr: tuple[str, ...]
    has: Callable[[Tx, Person], bool]


_KINDS: dict[str, FactorKind] = {}


def register(kind: FactorKind) -> None:
    _KINDS[kind.name] = kind


def factors_of(tx: Tx, person: Person) -> frozenset[str]:
    """The names of the factors ``person`` can sign in with besides a password."""
    return frozenset(name for name, kind in _KINDS.items() if kind.has(tx, person))


def amr_with(kind: str | None) -> list[str]:
    """The amr of a password sign-in, completed by a factor of ``kind`` (or not)."""
    if kind is None:
        return [PWD]
    return combined([PWD], _KINDS[kind].amr)


def combined(before: Sequence[str] | None, proved: Sequence[str]) -> list[str]:
    """The amr of a sign-in that had ``before`` and has now proved ``proved`` too, with
    ``mfa`` once it holds two factors."""
    methods = set(before or ()) | set(proved)
    return sorted(methods | {MFA} if multi_factor(methods) else methods)


def _has_totp(tx: Tx, person: Person) -> bool:
    row = factor_repo.get_totp(tx.s, person.id)
    return row is not None and row.confirmed_at is not None


def _has_passkey(tx: Tx, person: Person) -> bool:
    return any(p.cloned_at is None for p in passkey_repo.passkeys_of(tx.s, person.eco, person.id))


TOTP, PASSKEY = "totp", "passkey"
register(FactorKind(TOTP, (OTP,), _has_totp))
register(FactorKind(PASSKEY, (HWK,), _has_passkey))


# --- policy ------------------------------------------------------------------------------


def strictest(*policies: str | None) -> str:
    return max((p for p in policies if p in POLICIES), key=POLICIES.index, default=OPTIONAL)


def policy_of(tx: Tx, person: Person) -> str:
    """The policy that applies to ``person``: the stricter of ecosystem's and partner's."""
    eco = repo.get_ecosystem(tx.s, person.eco)
    partner = repo.get_partner(tx.s, person.eco, person.partner)
    return strictest(eco.second_factor if eco else None, partner.second_factor if partner else None)


def satisfied(policy: str, amr: list[str] | None) -> bool:
    """Whether a sign-in with ``amr`` meets ``policy``."""
    if policy == PASSKEYS_ONLY:
        return HWK in (amr or [])
    if policy == REQUIRED:
        return multi_factor(amr)
    return True


def password_allowed(tx: Tx, eco: str, person: Person | None) -> bool:
    """Whether a password may sign in: the person's policy, or for a username nobody
    has, the ecosystem's (so the answer does not tell which usernames exist there)."""
    if person is not None:
        return policy_of(tx, person) != PASSKEYS_ONLY
    row = repo.get_ecosystem(tx.s, eco)
    return row is None or row.second_factor != PASSKEYS_ONLY


def _valid(field: str, policy: str | None) -> None:
    if policy not in POLICIES:
        raise invalid_field(field, f"second_factor must be one of {', '.join(POLICIES)}")


def set_ecosystem_policy(tx: Tx, eco: str, policy: str, actor: str) -> None:
    """The ecosystem's policy; partners' that are now no stricter are left as they are
    (the stricter of the two applies)."""
    _valid("second_factor", policy)
    row = ecosystem(tx, eco)
    row.second_factor = policy
    tx.s.flush()
    tx.audit(eco, "admin.second_factor.updated", actor=actor, target=eco, policy=policy)


def set_partner_policy(tx: Tx, eco: str, partner: str, policy: str | None, actor: str) -> None:
    """A partner's policy: stricter than the ecosystem's, or None (the ecosystem's)."""
    if policy is not None:
        _valid("second_factor", policy)
    row = repo.get_partner(tx.s, eco, partner)
    if row is None:
        raise not_found("partner")
    floor = ecosystem(tx, eco).second_factor
    if policy is not None and POLICIES.index(policy) < POLICIES.index(floor):
        raise invalid_field(
            "second_factor",
            f"a partner may only tighten the ecosystem's policy ({floor}), not loosen it",
        )
    row.second_factor = policy
    tx.s.flush()
    tx.audit(eco, "admin.second_factor.updated", actor=actor, target=partner, policy=policy)


def policies(tx: Tx, eco: str) -> dict[str, object]:
    row = ecosystem(tx, eco)
    partners = {p.slug: p.second_factor for p in repo.list_partners(tx.s, eco)}
    return {
        "second_factor": row.second_factor,
        "partners": {k: v for k, v in partners.items() if v is not None},
    }


# --- what an authorization request asks for -----------------------------------------------


class BadClaims(ValueError):
    """A ``claims`` parameter that is not the JSON object OIDC Core §5.5 defines."""


def requested_acr(data: dict[str, str]) -> str | None:
    """The strongest known acr that ``acr_values`` or an essential ``acr`` of the
    ``claims`` parameter's ``id_token`` member asks for (OIDC Core §3.1.2.1, §5.5.1.1)."""
    asked = set((data.get("acr_values") or "").split())
    raw = data.get("claims")
    if raw:
        try:
            claims = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # a depth bomb is no claims request
            raise BadClaims("claims is not JSON") from exc
        if not isinstance(claims, dict):
            raise BadClaims("claims is not a JSON object")
        id_token = claims.get("id_token")
        acr = id_token.get("acr") if isinstance(id_token, dict) else None
        if isinstance(acr, dict):
            values = acr.get("values")
            listed: list[object] = values if isinstance(values, list) else []
            asked |= {v for v in [*listed, acr.get("value")] if isinstance(v, str)}
    known = [a for a in ACR_VALUES if a in asked]
    return known[-1] if known else None


def meets(amr: list[str] | None, acr: str | None) -> bool:
    """Whether a sign-in with ``amr`` reached ``acr`` (None: anything does)."""
    return acr is None or acr == ACR_PWD or multi_factor(amr)
