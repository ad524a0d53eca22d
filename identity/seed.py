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
from identity import repository as repo
from identity import service
from identity.context import Tx
from identity.crypto import Passwords, Sealer, digest, new_secret
from identity.tokens import OIDC_SCOPES

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
EVERY_SCOPE = sorted(ALL_SCOPES | OIDC_SCOPES)
USER_GRANTS = ["authorization_code", "refresh_token"]
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
CLIENTS: dict[str, dict[str, Any]] = {
    "mesh-cli": dict(
        name="partnermesh CLI",
        partner=None,
        auth_method="none",
        grant_types=USER_GRANTS,
        scopes=EVERY_SCOPE,
        redirect_uris=["http://127.0.0.1:8099/callback"],
    ),
    "portal": dict(
        name="partnermesh portal",
        partner="acme-hq",
        auth_method="client_secret_basic",
        grant_types=[*USER_GRANTS, EXCHANGE],
        scopes=EVERY_SCOPE,
        first_party=True,
        redirect_uris=["http://127.0.0.1:8082/auth/callback"],
        post_logout_redirect_uris=["http://127.0.0.1:8082/"],
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


def seed(tx: Tx, sealer: Sealer, hashes: dict[str, str], fresh: bool) -> dict[str, str]:
    """Create what is missing; returns new client secrets (all of them when ``fresh``)."""
    if repo.get_ecosystem(tx.s, ECO) is None:
        service.create_ecosystem(tx, ECO, ECO_NAME, sealer, actor="seed", policy="invite")
        service.set_exchange_rules(tx, ECO, EXCHANGE_RULES, "seed")
    for slug, name in PARTNERS.items():
        if repo.get_partner(tx.s, ECO, slug) is None:
            service.create_partner(tx, ECO, slug, name, verified=True, actor="seed")
    for username, (partner, name, roles) in PEOPLE.items():
        if repo.person_by_username(tx.s, ECO, username) is None:
            service.create_person(
                tx,
                ECO,
                username,
                partner,
                name,
                roles,
                hashes[username],
                f"{username}@{partner}.example",
                actor="seed",
            )
    secrets: dict[str, str] = {}
    for client_id, spec in CLIENTS.items():
        row = repo.get_client(tx.s, ECO, client_id)
        if row is None:
            row, secret = service.create_client(tx, ECO, client_id, actor="seed", **spec)
            if secret:
                secrets[client_id] = secret
        elif fresh and row.secret_hash:
            secret = new_secret(32)
            row.secret_hash = digest(secret)
            secrets[client_id] = secret
    tx.s.flush()
    return secrets


def credentials(issuer: str, secrets: dict[str, str]) -> dict[str, Any]:
    return {
        "eco": ECO,
        "issuer": issuer,
        "clients": {
            cid: {
                "client_id": cid,
                "client_secret": secrets.get(cid),
                "redirect_uris": CLIENTS[cid].get("redirect_uris", []),
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
    return {u: passwords.hash(PASSWORD) for u in PEOPLE}


def read_credentials(path: Path) -> dict[str, Any] | None:
    """The credentials file written earlier, or None."""
    if not path.exists():
        return None
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc
