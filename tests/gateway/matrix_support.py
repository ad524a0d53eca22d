"""What the authorization matrix needs: every service found under ``services/``, every caller kind.

Services are found generically (a package with ``handlers.register``, ``models.metadata``
and one ``ServiceSettings`` subclass in ``settings``), so operations added with a new
service are covered as soon as it is merged.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Any

import jwt

import services
from contracts.claims import ALL_SCOPES, Claims, Role
from contracts.errors import STATUS
from contracts.policy import Operation, decide
from gateway.routes import path_params
from mesh.settings import ServiceSettings
from tests.support.tokens import TestKeys, TokenFactory

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
INVALID_KINDS = ("expired", "bad_signature", "alg_none")
KINDS = ("anonymous", *INVALID_KINDS, *VALID_KINDS)


def call_params(op: Operation) -> dict[str, str]:
    """The path parameters the matrix calls ``op`` with."""
    values = {"eco": ECO, "partner": PARTNER}
    return {name: values.get(name, PLACEHOLDER) for name in path_params(op.path)}


class Callers:
    """Mints the token of each caller kind for an operation, and the status it must get."""

    def __init__(self, tokens: TokenFactory) -> None:
        self.tokens = tokens
        self.forger = TokenFactory(TestKeys(kid=tokens.keys.kid))  # same kid, wrong key

    def payload(self, kind: str, op: Operation) -> dict[str, Any]:
        eco, partner, roles = VALID_KINDS.get(kind, (ECO, PARTNER, (Role.MEMBER,)))
        scope = " ".join(sorted(ALL_SCOPES))
        if kind == "missing_scope" and op.policy.scope is not None:
            scope = " ".join(sorted(ALL_SCOPES - {op.policy.scope.value}))
        return self.tokens.claims(eco=eco, partner=partner, roles=roles, scope=scope)

    def token(self, kind: str, op: Operation) -> str | None:
        if kind == "anonymous":
            return None
        claims = self.payload(kind, op)
        if kind == "alg_none":
            return jwt.encode(claims, None, algorithm="none", headers={"typ": "at+jwt"})
        if kind == "expired":
            claims.update(iat=claims["iat"] - 3600, exp=claims["iat"] - 600)
        signer = self.forger if kind == "bad_signature" else self.tokens
        hdrs = {"typ": "at+jwt", "kid": self.tokens.keys.kid}
        return jwt.encode(claims, signer.keys.private_pem, "RS256", headers=hdrs)

    def expected_denial(self, kind: str, op: Operation) -> int | None:
        """The status the policy demands for this caller, or None when it lets them through."""
        if kind in INVALID_KINDS:
            return INVALID
        claims = None if kind == "anonymous" else Claims.model_validate(self.payload(kind, op))
        denial = decide(op.policy, claims, call_params(op))
        return STATUS[denial.code] if denial else None
