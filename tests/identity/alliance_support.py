"""Three ecosystems of one deployment (acme, globex, initech), their operators and
members, and helpers to drive alliances through identity's admin API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from identity.cli import commands
from identity.cli.devclient import login
from tests.identity.conftest import CLI_REDIRECT, IdP

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
PASSWORD = "ally-operator-password"
OPERATOR_SCOPE = "openid admin directory:read profile:read forum:read"


@dataclass
class World:
    """The provider and, per ecosystem, its operator's token."""

    idp: IdP
    operators: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)  # "<client>@<eco>" -> secret

    def url(self, eco: str, path: str = "") -> str:
        return f"{self.idp.url}/eco/{eco}{path}"

    async def call(
        self, eco: str, method: str, path: str, token: str | None = None, body: Any = None
    ) -> httpx.Response:
        tok = self.operators[eco] if token is None else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return await self.idp.http.request(
            method, self.url(eco, f"/admin/alliances{path}"), json=body, headers=headers
        )

    async def propose(self, eco: str, peer: str, terms: dict[str, Any] | None = None) -> str:
        """A new alliance offered by ``eco`` (any open one of the pair ended first)."""
        await self.end_open(eco, peer)
        body = {"peer": peer, "terms": terms if terms is not None else default_terms(eco, peer)}
        resp = await self.call(eco, "POST", "", body=body)
        assert resp.status_code == 201, resp.text
        return str(resp.json()["alliance"])

    async def act(self, eco: str, alliance: str, action: str, token: str | None = None) -> Any:
        return await self.call(eco, "POST", f"/{alliance}/{action}", token)

    async def active(self, eco: str, peer: str, terms: dict[str, Any] | None = None) -> str:
        alliance = await self.propose(eco, peer, terms)
        resp = await self.act(peer, alliance, "accept")
        assert resp.status_code == 200 and resp.json()["status"] == "active", resp.text
        return alliance

    async def end_open(self, eco: str, peer: str) -> None:
        listed = (await self.call(eco, "GET", "")).json()
        for a in listed:
            if a["ally"] == peer and a["status"] in ("proposed", "active", "suspended"):
                assert (await self.act(eco, a["alliance"], "end")).status_code == 200

    async def client_token(self, eco: str, client: str) -> str:
        resp = await self.idp.http.post(
            self.url(eco, "/token"),
            data={"grant_type": "client_credentials"},
            auth=(client, self.secrets[f"{client}@{eco}"]),
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    async def exchange(self, into: str, client: str, token: str, **extra: str) -> httpx.Response:
        """``client`` (``<id>@<eco>`` or a client of ``into``) exchanges ``token`` at ``into``."""
        return await self.idp.http.post(
            self.url(into, "/token"),
            data={
                "grant_type": EXCHANGE,
                "subject_token": token,
                "subject_token_type": AT,
                **extra,
            },
            auth=(client, self.secrets[client if "@" in client else f"{client}@{into}"]),
        )


def default_terms(a: str, b: str) -> dict[str, Any]:
    return {
        a: {"share": "people", "roles": ["member"], "scopes": ["directory:read", "profile:read"]},
        b: {"share": "companies", "roles": ["member"], "scopes": ["directory:read"]},
    }


async def operator_token(idp: IdP, eco: str, username: str, password: str) -> str:
    async with httpx.AsyncClient(timeout=10) as browser:
        tokens = await login(
            browser,
            f"{idp.url}/eco/{eco}",
            "mesh-cli",
            username,
            password,
            CLI_REDIRECT,
            OPERATOR_SCOPE,
        )
    return str(tokens["access_token"])


async def add_backend(world: World, eco: str, partner: str) -> str:
    """A partner back-end of ``eco`` (client credentials and token exchange), and a rule
    of ``eco`` letting it exchange its own partner's people's tokens."""
    client = f"{eco}-backend"
    resp = await world.idp.http.post(
        world.url(eco, "/admin/clients"),
        json={
            "client_id": client,
            "name": f"{eco} back-end",
            "partner": partner,
            "grant_types": ["client_credentials", EXCHANGE],
            "scopes": ["directory:read", "profile:read", "connector:invoke", "forum:read"],
            "roles": ["member", "partner_admin"],
        },
        headers={"Authorization": f"Bearer {world.operators[eco]}"},
    )
    assert resp.status_code == 201, resp.text
    world.secrets[f"{client}@{eco}"] = resp.json()["client_secret"]
    rules = {"rules": [{"client": client, "subject_clients": "*", "same_partner": True}]}
    resp = await world.idp.http.put(
        world.url(eco, "/admin/exchange-rules"),
        json=rules,
        headers={"Authorization": f"Bearer {world.operators[eco]}"},
    )
    assert resp.status_code == 200, resp.text
    return client


async def make_world(idp: IdP) -> World:
    """acme (the demo, operator olivia), globex (gina) and initech (ian), each with a
    partner back-end allowed to exchange its own partner's tokens."""
    operators = {"acme": str((await idp.person_tokens("olivia", OPERATOR_SCOPE))["access_token"])}
    for eco, person in (("globex", "gina"), ("initech", "ian")):
        await commands.create_ecosystem(
            idp.settings, eco, f"{eco.title()} Brand", (f"{eco}-corp", "Corp"), person, PASSWORD
        )
        operators[eco] = await operator_token(idp, eco, person, PASSWORD)
    w = World(idp, operators)
    for eco, partner in (
        ("acme", "acme-hq"),
        ("globex", "globex-corp"),
        ("initech", "initech-corp"),
    ):
        await add_backend(w, eco, partner)
    return w
