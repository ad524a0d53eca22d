"""The demo's second ecosystem, allied with ``acme`` by ``make run``: its identities.

Meridian Trade Network federates importers and air cargo carriers; ``make run`` agrees an
alliance between it and the ACME Partner Network through identity's alliance lifecycle
(``deploy/demo/alliance.py``). Seeded here, like ``acme`` in :mod:`identity.cli.seed`:
the ecosystem, its partners, its people (same demo password), the command-line client its
people sign in with and its partners' back-end clients.
"""

from __future__ import annotations

from typing import Any

from contracts.claims import ALL_SCOPES
from identity.cli.seed import EXCHANGE, seed_client, seed_directory
from identity.domain.crypto import Sealer
from identity.domain.ecosystems import CLI_CLIENT
from identity.store.transaction import Tx

ECO, ECO_NAME = "meridian", "Meridian Trade Network"
PARTNERS = {
    "meridian-hq": "Meridian Trade Network",
    "wideworld": "Wide World Importers",
    "tailspin": "Tailspin Air Cargo",
}
PEOPLE: dict[str, tuple[str, str, list[str]]] = {
    "mira": ("meridian-hq", "Mira Mendes", ["operator", "member"]),
    "bastian": ("meridian-hq", "Bastian Berg", ["broker", "member"]),
    "wanda": ("wideworld", "Wanda Wojcik", ["partner_admin", "member"]),
    "walter": ("wideworld", "Walter Wu", ["member"]),
    "tara": ("tailspin", "Tara Thompson", ["partner_admin", "member"]),
    "theo": ("tailspin", "Theo Tanaka", ["member"]),
}
BACKENDS = ("wideworld", "tailspin")
CLIENTS: dict[str, dict[str, Any]] = {
    "mesh-cli": CLI_CLIENT,
    **{
        f"{p}-backend": dict(
            name=f"{PARTNERS[p]} back-end",
            partner=p,
            auth_method="client_secret_basic",
            grant_types=["client_credentials", EXCHANGE],
            scopes=sorted(ALL_SCOPES),
            roles=["member", "partner_admin"],
        )
        for p in BACKENDS
    },
}
EXCHANGE_RULES: list[dict[str, Any]] = [
    {"client": f"{p}-backend", "subject_clients": "*", "same_partner": True} for p in BACKENDS
]


def seed(tx: Tx, sealer: Sealer, hashes: dict[str, str], fresh: bool) -> dict[str, str]:
    """Create what is missing; returns new client secrets (all of them when ``fresh``)."""
    seed_directory(tx, ECO, ECO_NAME, sealer, EXCHANGE_RULES, PARTNERS, PEOPLE, hashes)
    secrets: dict[str, str] = {}
    for client_id, spec in CLIENTS.items():
        seed_client(tx, ECO, client_id, spec, fresh, secrets)
    tx.s.flush()
    return secrets


def credentials(issuer: str, secrets: dict[str, str], password: str) -> dict[str, Any]:
    """The ``allies.meridian`` part of the demo's credentials file."""
    return {
        "eco": ECO,
        "name": ECO_NAME,
        "issuer": issuer,
        "clients": {
            cid: {
                "client_id": cid,
                "client_secret": secrets.get(cid),
                "partner": CLIENTS[cid]["partner"],
            }
            for cid in CLIENTS
        },
        "people": {
            u: {"username": u, "password": password, "partner": p, "roles": r}
            for u, (p, _n, r) in PEOPLE.items()
        },
    }
