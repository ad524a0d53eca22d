"""The demo ecosystem behind ``make run``: ``python -m identity seed-demo --out FILE``.

Idempotent: creates what is absent, writes the credentials file once (mode 0600) and
re-reads it later. If the ecosystem exists but the file is gone, the demo clients get
new secrets (they are stored only as hashes) and the file is written again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from contracts.claims import ALL_SCOPES
from identity.domain import directory
from identity.domain.crypto import Passwords, Sealer, digest, new_secret
from identity.domain.ecosystems import CLI_CLIENT, EVERY_SCOPE, USER_GRANTS
from identity.store import repository as repo
from identity.store.models import Client
from identity.store.transaction import Tx

ECO, ECO_NAME = "acme", "ACME Partner Network"
PASSWORD = "partnermesh-demo"
PARTNERS = {
    "acme-hq": "ACME Corp",
    "northwind": "Northwind Logistics",
    "contoso": "Contoso Manufacturing",
    "fabrikam": "Fabrikam Analytics",
}
PEOPLE: dict[str, tuple[str, str, list[str]]] = {
    "olivia": ("acme-hq", "Olivia Operator", ["operator", "member"]),
    "bruno": ("acme-hq", "Bruno Broker", ["broker", "member"]),
    "nadia": ("northwind", "Nadia Novak", ["partner_admin", "member"]),
    "noah": ("northwind", "Noah Nguyen", ["member"]),
    "carlos": ("contoso", "Carlos Castillo", ["partner_admin", "member"]),
    "chloe": ("contoso", "Chloe Chen", ["member"]),
    "fatima": ("fabrikam", "Fatima Farouk", ["partner_admin", "member"]),
    "felix": ("fabrikam", "Felix Fischer", ["member"]),
}
DEFAULT_PORTAL_URL = "http://127.0.0.1:8082"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
PORTAL_SCOPES = [s for s in EVERY_SCOPE if s != "offline_access"]
CLIENTS: dict[str, dict[str, Any]] = {
    "mesh-cli": CLI_CLIENT,
    "portal": dict(
        name="partnermesh portal",
        partner="acme-hq",
        auth_method="client_secret_basic",
        grant_types=[*USER_GRANTS, EXCHANGE],
        # a web app: its refresh tokens end with the person's session (no offline_access)
        scopes=PORTAL_SCOPES,
        first_party=True,
        redirect_uris=[f"{DEFAULT_PORTAL_URL}/auth/callback"],
        post_logout_redirect_uris=[f"{DEFAULT_PORTAL_URL}/"],
        backchannel_logout_uri=f"{DEFAULT_PORTAL_URL}/auth/backchannel-logout",
        backchannel_logout_session_required=True,
    ),
    # a device without a keyboard (RFC 8628), e.g. a meeting-room screen: it may stay
    # signed in after the person's browser session ends (offline_access)
    "mesh-device": dict(
        name="partnermesh meeting-room display",
        partner=None,
        auth_method="none",
        grant_types=[DEVICE, "refresh_token"],
        scopes=EVERY_SCOPE,
    ),
    **{
        f"{p}-backend": dict(
            name=f"{PARTNERS[p]} back-end",
            partner=p,
            auth_method="client_secret_basic",
            grant_types=["client_credentials", EXCHANGE],
            scopes=sorted(ALL_SCOPES),
            roles=["member", "partner_admin"],
        )
        for p in ("northwind", "contoso", "fabrikam")
    },
}
EXCHANGE_RULES: list[dict[str, Any]] = [
    {"client": "portal", "subject_clients": "*"},
    *(
        {"client": f"{p}-backend", "subject_clients": "*", "same_partner": True}
        for p in ("northwind", "contoso", "fabrikam")
    ),
]


def portal_uris(portal_url: str) -> dict[str, Any]:
    """The portal client's redirect and back-channel logout URIs for a portal served at
    ``portal_url``."""
    base = portal_url.rstrip("/")
    return {
        "redirect_uris": [f"{base}/auth/callback"],
        "post_logout_redirect_uris": [f"{base}/"],
        "backchannel_logout_uri": f"{base}/auth/backchannel-logout",
    }


def client_spec(client_id: str, portal_url: str) -> dict[str, Any]:
    spec = dict(CLIENTS[client_id])
    if client_id == "portal":
        spec.update(portal_uris(portal_url))
    return spec


def seed(
    tx: Tx,
    sealer: Sealer,
    hashes: dict[str, str],
    fresh: bool,
    portal_url: str = DEFAULT_PORTAL_URL,
) -> dict[str, str]:
    """Create what is missing; returns new client secrets (all of them when ``fresh``).

    The portal client's redirect URIs follow ``portal_url`` on every run: a mesh moved
    with ``--port-offset`` over state of an earlier run still signs people in."""
    seed_directory(tx, ECO, ECO_NAME, sealer, EXCHANGE_RULES, PARTNERS, PEOPLE, hashes)
    secrets: dict[str, str] = {}
    for client_id in CLIENTS:
        row = seed_client(tx, ECO, client_id, client_spec(client_id, portal_url), fresh, secrets)
        if client_id == "portal":
            uris = portal_uris(portal_url)
            row.redirect_uris = uris["redirect_uris"]
            row.post_logout_redirect_uris = uris["post_logout_redirect_uris"]
            row.backchannel_logout_uri = uris["backchannel_logout_uri"]
            row.backchannel_logout_session_required = True
            row.scopes = PORTAL_SCOPES
    tx.s.flush()
    return secrets


def seed_directory(
    tx: Tx,
    eco: str,
    eco_name: str,
    sealer: Sealer,
    rules: list[dict[str, Any]],
    partners: dict[str, str],
    people: dict[str, tuple[str, str, list[str]]],
    hashes: dict[str, str],
) -> None:
    """A demo ecosystem with its exchange rules, partners and people, where absent."""
    if repo.get_ecosystem(tx.s, eco) is None:
        directory.create_ecosystem(tx, eco, eco_name, sealer, actor="seed", policy="invite")
        directory.set_exchange_rules(tx, eco, rules, "seed")
    for slug, name in partners.items():
        if repo.get_partner(tx.s, eco, slug) is None:
            directory.create_partner(tx, eco, slug, name, verified=True, actor="seed")
    for username, (partner, name, roles) in people.items():
        if repo.person_by_username(tx.s, eco, username) is None:
            email = f"{username}@{partner}.example"
            directory.create_person(
                tx, eco, username, partner, name, roles, hashes[username], email, actor="seed"
            )


def seed_client(
    tx: Tx, eco: str, client_id: str, spec: dict[str, Any], fresh: bool, secrets: dict[str, str]
) -> Client:
    """A demo client, made when absent; its new secret (if any) goes into ``secrets``, also
    when ``fresh`` asks for new secrets of existing clients."""
    row = repo.get_client(tx.s, eco, client_id)
    if row is None:
        row, secret = directory.create_client(tx, eco, client_id, actor="seed", **spec)
        if secret:
            secrets[client_id] = secret
    elif fresh and row.secret_hash:
        secret = new_secret(32)
        row.secret_hash = digest(secret)
        secrets[client_id] = secret
    return row


def refresh_urls(doc: dict[str, Any], issuer: str, portal_url: str) -> bool:
    """Bring the URLs of a credentials file written by an earlier run up to date; True if
    anything changed (the file must be written again)."""
    before = json.dumps(doc, sort_keys=True)
    doc["issuer"] = issuer
    for cid, client in doc.get("clients", {}).items():
        if cid in CLIENTS:
            client["redirect_uris"] = client_spec(cid, portal_url).get("redirect_uris", [])
    return json.dumps(doc, sort_keys=True) != before


def credentials(
    issuer: str, secrets: dict[str, str], portal_url: str = DEFAULT_PORTAL_URL
) -> dict[str, Any]:
    return {
        "eco": ECO,
        "issuer": issuer,
        "clients": {
            cid: {
                "client_id": cid,
                "client_secret": secrets.get(cid),
                "redirect_uris": client_spec(cid, portal_url).get("redirect_uris", []),
                "partner": CLIENTS[cid]["partner"],
            }
            for cid in CLIENTS
        },
        "people": {
            u: {"username": u, "password": PASSWORD, "partner": p, "roles": r}
            for u, (p, _n, r) in PEOPLE.items()
        },
    }


def write_once(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)


def hash_demo_passwords(passwords: Passwords) -> dict[str, str]:
    """One hash of the demo password per person of both demo ecosystems (one hash each:
    the same password must not give the same hash)."""
    from identity.cli import seed_ally  # it builds on this module

    return {u: passwords.hash(PASSWORD) for u in (*PEOPLE, *seed_ally.PEOPLE)}


def read_credentials(path: Path) -> dict[str, Any] | None:
    """The credentials file written earlier, or None."""
    if not path.exists():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc
