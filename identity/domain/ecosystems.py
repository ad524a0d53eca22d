"""Ecosystems as a whole: create one with its issuer, change its settings, disable it.

The logic behind the platform admin API (:mod:`identity.http.platform`), an ecosystem's own
``/admin/ecosystem`` routes and the ``create-ecosystem`` command. Every function runs in
the caller's transaction, so a failure leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.claims import ALL_SCOPES
from identity.domain import directory, keys, revocation
from identity.domain.crypto import Sealer
from identity.domain.tokens import OIDC_SCOPES
from identity.store import repository as repo
from identity.store.models import Ecosystem, Person
from identity.store.transaction import Tx
from mesh.errors import conflict

# Settings an ecosystem's operators may change (disabling is for the platform's operators).
SETTINGS = (
    "name",
    "access_ttl",
    "refresh_ttl",
    "membership_policy",
    "admission_rule",
    "default_partner",
    "require_pushed_authorization_requests",
)
USER_GRANTS = ["authorization_code", "refresh_token"]
EVERY_SCOPE = sorted(ALL_SCOPES | OIDC_SCOPES)
# The public client of the partnermesh CLI, which every ecosystem gets at creation.
CLI_CLIENT: dict[str, Any] = dict(
    name="partnermesh CLI",
    partner=None,
    auth_method="none",
    grant_types=USER_GRANTS,
    scopes=EVERY_SCOPE,
    redirect_uris=["http://127.0.0.1:8099/callback"],
)


@dataclass(frozen=True)
class Bootstrap:
    """The first partner of a new ecosystem and, optionally, its first operator.

    With ``password_hash`` the operator is created at once; without it the result
    carries an invitation (roles operator, member) for the operator to sign up with.
    """

    partner: str
    partner_name: str
    operator: str | None = None
    operator_name: str | None = None
    email: str | None = None
    password_hash: str | None = None


@dataclass
class Created:
    ecosystem: Ecosystem
    operator: Person | None = None
    invitation: str | None = None


def create(
    tx: Tx,
    slug: str,
    name: str,
    sealer: Sealer,
    actor: str,
    settings: dict[str, Any] | None = None,
    bootstrap: Bootstrap | None = None,
) -> Created:
    """The ecosystem, its issuer's first signing keys, the public CLI client, and the
    bootstrap partner and operator, all in this transaction."""
    row = directory.create_ecosystem(tx, slug, name, sealer, actor=actor)
    result = Created(row)
    if bootstrap is not None:
        directory.create_partner(
            tx, slug, bootstrap.partner, bootstrap.partner_name, verified=True, actor=actor
        )
        if bootstrap.operator and bootstrap.password_hash:
            result.operator = directory.create_person(
                tx,
                slug,
                bootstrap.operator,
                bootstrap.partner,
                bootstrap.operator_name or bootstrap.operator,
                ["operator", "member"],
                bootstrap.password_hash,
                bootstrap.email,
                actor,
            )
        elif bootstrap.operator:
            result.invitation = directory.invite(
                tx, slug, bootstrap.partner, ["operator", "member"], bootstrap.email, actor
            )
    spec = {k: v for k, v in CLI_CLIENT.items() if k != "name"}
    directory.create_client(tx, slug, "mesh-cli", CLI_CLIENT["name"], actor=actor, **spec)
    if settings:
        update(tx, slug, settings, actor)
    return result


def update(tx: Tx, slug: str, changes: dict[str, Any], actor: str | None) -> Ecosystem:
    """Name, token lifetimes and membership policy (validated as ``PUT …/policy`` does)."""
    row = directory.ecosystem(tx, slug)
    policy_keys = {"membership_policy", "admission_rule", "default_partner"}
    if policy_keys & changes.keys():
        directory.set_policy(
            tx,
            slug,
            changes.get("membership_policy", row.membership_policy),
            changes.get("admission_rule", row.admission_rule),
            changes.get("default_partner", row.default_partner),
            actor,
        )
    plain = {k: v for k, v in changes.items() if k not in policy_keys}
    if plain:
        directory.update_ecosystem(tx, slug, plain, actor)
    return row


def set_disabled(tx: Tx, slug: str, disabled: bool, actor: str, platform: str) -> Ecosystem:
    """Disable (its issuer answers 404, its refresh tokens and the access tokens issued
    with them are revoked) or enable again. The platform ecosystem cannot be disabled."""
    row = directory.ecosystem(tx, slug)
    if disabled and slug == platform:
        raise conflict("the platform ecosystem cannot be disabled")
    if disabled == (row.disabled_at is not None):
        return row
    row.disabled_at = datetime.now(UTC) if disabled else None
    tx.s.flush()
    if disabled:
        revocation.revoke_ecosystem(tx, slug)
    verb = "disabled" if disabled else "enabled"
    tx.audit(slug, f"admin.ecosystem.{verb}", actor=actor, target=slug)
    return row


def listing(tx: Tx) -> list[Ecosystem]:
    return list(repo.list_ecosystems(tx.s))


def view(e: Ecosystem, issuer: str) -> dict[str, Any]:
    return {
        "slug": e.slug,
        "name": e.name,
        "issuer": issuer,
        "disabled": e.disabled_at is not None,
        "membership_policy": e.membership_policy,
        "admission_rule": e.admission_rule,
        "default_partner": e.default_partner,
        "access_ttl": e.access_ttl,
        "refresh_ttl": e.refresh_ttl,
        "access_token_alg": keys.access_token_alg(e),
        "exchange_rules": e.exchange_rules,
        "require_pushed_authorization_requests": e.require_pushed_authorization_requests,
    }
