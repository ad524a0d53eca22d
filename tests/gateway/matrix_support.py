"""What the authorization matrix needs: every service found under ``services/``, every caller kind.

Services are found generically (a package with ``handlers.register``, ``models.metadata``
and one ``ServiceSettings`` subclass in ``settings``), so operations added with a new
service are covered as soon as it is merged.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import time
import types
import typing
from dataclasses import dataclass
from typing import Any

import jwt
from pydantic import BaseModel

import services
from contracts.claims import ALL_SCOPES, Claims, Role, Scope
from contracts.errors import STATUS
from contracts.policy import Operation, Policy, decide
from contracts.v1.alliances import DirectionTerms, Sharing
from gateway.routes import path_params
from mesh.settings import ServiceSettings
from mesh.tokens import issuer_for
from tests.support.tokens import TEST_IDENTITY_URL, TestKeys, TokenFactory

ECO = "acme"
PARTNER = "northwind"
PLACEHOLDER = "pm-matrix-missing"
INVALID = 401


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_cls: type[ServiceSettings]
    metadata: Any
    register: Any


def discover_services() -> list[ServiceSpec]:
    found = []
    for mod in pkgutil.iter_modules(services.__path__):
        if not mod.ispkg:
            continue
        base = f"services.{mod.name}"
        try:
            handlers = importlib.import_module(f"{base}.handlers")
            models = importlib.import_module(f"{base}.models")
            settings = importlib.import_module(f"{base}.settings")
        except ModuleNotFoundError:
            continue
        classes = [
            c
            for _, c in inspect.getmembers(settings, inspect.isclass)
            if issubclass(c, ServiceSettings)
            and c is not ServiceSettings
            and c.__module__ == settings.__name__
        ]
        if len(classes) != 1:
            raise RuntimeError(f"{base}.settings must define exactly one ServiceSettings subclass")
        found.append(ServiceSpec(mod.name, classes[0], models.metadata, handlers.register))
    return found


# (kind, eco, partner, roles) of callers with a valid token; scope is all scopes.
VALID_KINDS: dict[str, tuple[str, str | None, tuple[Role, ...]]] = {
    "other_ecosystem": ("globex", PARTNER, (Role.OPERATOR, Role.PARTNER_ADMIN, Role.MEMBER)),
    "other_partner": (ECO, "contoso", (Role.PARTNER_ADMIN, Role.MEMBER)),
    "member": (ECO, PARTNER, (Role.MEMBER,)),
    "partner_admin": (ECO, PARTNER, (Role.PARTNER_ADMIN, Role.MEMBER)),
    "broker": (ECO, "acme-hq", (Role.BROKER, Role.MEMBER)),
    "operator": (ECO, "acme-hq", (Role.OPERATOR, Role.MEMBER)),
    "missing_scope": (ECO, PARTNER, (Role.PARTNER_ADMIN, Role.MEMBER)),
}
# ``allied_cut_off``: a token exchanged across an alliance that has since ended (issued
# before the per-origin cut-off its end published): refused like any invalid token.
INVALID_KINDS = ("expired", "bad_signature", "alg_none", "allied_cut_off")
# Callers from the allied ecosystem ``ALLY``: a token of theirs exchanged into ``ECO``
# across an alliance (``eco`` ECO, ``fed.eco`` ALLY), carrying what ECO's terms grant the
# ally's people (:data:`ALLIED_TERMS`): those roles, at most those scopes, no partner of
# ECO. The policy admits them exactly where those roles and scopes reach.
ALLY = "meridian"
ENDED_ALLY = "matrix-ended-ally"
ENDED_AT = int(time.time())
"""When the alliance with ``ENDED_ALLY`` ended: its cut-off refuses tokens issued before."""
ALLIED_TERMS = DirectionTerms(
    share=Sharing.PEOPLE,
    roles=["member", "partner_admin"],
    scopes=[Scope.DIRECTORY_READ, Scope.PROFILE_READ, Scope.CONNECTOR_READ, Scope.CONNECTOR_INVOKE],
    connector_partners=["contoso"],
)
ALLIED_KINDS: dict[str, tuple[Role, ...]] = {
    "allied_member": (Role.MEMBER,),
    "allied_partner_admin": ALLIED_TERMS.acting_roles,
}
KINDS = ("anonymous", *INVALID_KINDS, *VALID_KINDS, *ALLIED_KINDS)


def call_params(op: Operation) -> dict[str, str]:
    """The path parameters the matrix calls ``op`` with."""
    values = {"eco": ECO, "partner": PARTNER}
    return {name: values.get(name, PLACEHOLDER) for name in path_params(op.path)}


def sample(annotation: Any, name: str) -> Any:
    """A plausible value for a field (best effort: the edge may still answer 422)."""
    if name in ("eco", "partner"):
        return {"eco": ECO, "partner": PARTNER}[name]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), name)
    if origin is typing.Annotated:
        return sample(args[0], name)
    if origin in (list, tuple, set, frozenset):
        return []
    if origin is dict:
        return {}
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return next(iter(annotation)).value
        if issubclass(annotation, BaseModel):
            return required_sample(annotation)
        for kind, value in ((bool, True), (int, 1), (float, 1.0), (str, "pm-matrix")):
            if issubclass(annotation, kind):
                return value
    return "pm-matrix"


def required_sample(model: type[BaseModel], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        name: sample(field.annotation, name)
        for name, field in model.model_fields.items()
        if field.is_required() and name not in skip
    }


def call_fields(op: Operation) -> dict[str, Any]:
    """Required fields other than path parameters (query for GET/DELETE, else the body)."""
    return required_sample(op.request, path_params(op.path))


class Callers:
    """Mints the token of each caller kind for an operation, and the status it must get."""

    def __init__(self, tokens: TokenFactory) -> None:
        self.tokens = tokens
        self.forger = TokenFactory(TestKeys(kid=tokens.keys.kid))  # same kid, wrong key

    def payload(self, kind: str, op: Operation) -> dict[str, Any]:
        if kind in ALLIED_KINDS:
            return self.allied(ALLIED_KINDS[kind])
        if kind == "allied_cut_off":
            return self.allied(ALLIED_TERMS.acting_roles, ENDED_ALLY, issued_at=ENDED_AT - 60)
        eco, partner, roles = VALID_KINDS.get(kind, (ECO, PARTNER, (Role.MEMBER,)))
        scope = " ".join(sorted(ALL_SCOPES))
        if kind == "missing_scope" and op.policy.scope is not None:
            scope = " ".join(sorted(ALL_SCOPES - {op.policy.scope.value}))
        return self.tokens.claims(eco=eco, partner=partner, roles=roles, scope=scope)

    def allied(
        self, roles: tuple[Role, ...], origin: str = ALLY, issued_at: int | None = None
    ) -> dict[str, Any]:
        """A token of ``origin``'s wideworld exchanged into ``ECO`` as the alliance's rule
        issues it: the rule's roles and scopes, no partner of ``ECO``, ``fed`` its origin."""
        scope = " ".join(sorted(str(s) for s in ALLIED_TERMS.scopes))
        fed = {"iss": issuer_for(TEST_IDENTITY_URL, origin), "eco": origin, "partner": "wideworld"}
        claims = self.tokens.claims(eco=ECO, partner=None, roles=roles, scope=scope, fed=fed)
        if issued_at is not None:
            claims["iat"] = issued_at
        return claims

    def token(self, kind: str, op: Operation) -> str | None:
        if kind == "anonymous":
            return None
        claims = self.payload(kind, op)
        if kind == "alg_none":
            return jwt.encode(claims, "", algorithm="none", headers={"typ": "at+jwt"})
        if kind == "expired":
            claims.update(iat=claims["iat"] - 3600, exp=claims["iat"] - 600)
        signer = self.forger if kind == "bad_signature" else self.tokens
        hdrs = {"typ": "at+jwt", "kid": self.tokens.keys.kid}
        return jwt.encode(claims, signer.keys.private, "RS256", headers=hdrs)

    def expected_denial(self, kind: str, op: Operation) -> int | None:
        """The status the policy demands for this caller, or None when it lets them through."""
        if kind in INVALID_KINDS:
            return INVALID
        claims = None if kind == "anonymous" else Claims.model_validate(self.payload(kind, op))
        denial = decide(op.policy, claims, {**call_fields(op), **call_params(op)})
        return STATUS[denial.code] if denial else None


# Operations with policies the registry may not exercise yet (partner binding, roles,
# bypass roles), served in the tests by a real MeshService.
class PartnerThing(BaseModel):
    eco: str
    partner: str
    note: str = ""


class EcoThing(BaseModel):
    eco: str
    note: str = ""


def _op(name: str, method: str, path: str, model: type[BaseModel], policy: Policy) -> Operation:
    return Operation(
        name=f"testing.{name}",
        subject=f"pm.v1.testing.{name}",
        method=method,
        path=path,
        request=model,
        reply=model,
        policy=policy,
        summary=name,
    )


PARTNER_PRIVATE = _op(
    "partner_private",
    "GET",
    "/v1/ecosystems/{eco}/partners/{partner}/private",
    PartnerThing,
    Policy(scope=Scope.PROFILE_READ, partner_param="partner"),
)
CURATE = _op(
    "curate",
    "POST",
    "/v1/ecosystems/{eco}/curations",
    EcoThing,
    Policy(scope=Scope.BROKER_CURATE, roles=frozenset({Role.BROKER, Role.OPERATOR})),
)
ADMIN_OF_PARTNER = _op(
    "partner_admin",
    "PUT",
    "/v1/ecosystems/{eco}/partners/{partner}/settings",
    PartnerThing,
    Policy(
        scope=Scope.ADMIN,
        roles=frozenset({Role.PARTNER_ADMIN, Role.OPERATOR}),
        partner_param="partner",
        partner_bypass=frozenset({Role.OPERATOR, Role.BROKER}),
    ),
)
SYNTHETIC = (PARTNER_PRIVATE, CURATE, ADMIN_OF_PARTNER)
