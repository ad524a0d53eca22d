"""After start-up: seed demo content through the gateway and tell the user how to use the mesh."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TYPE_CHECKING, Any

import httpx

from contracts.claims import ALL_SCOPES
from deploy import demo
from mesh.tokens import issuer_for

if TYPE_CHECKING:
    from deploy.launcher import Launcher

log = logging.getLogger(__name__)
CLI_CLIENT = "mesh-cli"
CLI_REDIRECT = "http://127.0.0.1:8099/callback"
ALL_SCOPE_STRING = " ".join(sorted(ALL_SCOPES))


async def client_credentials(
    http: httpx.AsyncClient, issuer: str, client_id: str, secret: str, scope: str
) -> dict[str, Any]:
    meta = (await http.get(f"{issuer}/.well-known/openid-configuration")).json()
    resp = await http.post(
        meta["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
    )
    resp.raise_for_status()
    return dict(resp.json())


async def people_tokens(http: httpx.AsyncClient, issuer: str) -> dict[str, str]:
    from identity.devclient import login

    tokens = {}
    for username in demo.PEOPLE:
        result = await login(
            http,
            issuer,
            CLI_CLIENT,
            username,
            demo.PASSWORD,
            CLI_REDIRECT,
            "openid " + ALL_SCOPE_STRING,
        )
        tokens[username] = result["access_token"]
    return tokens


async def seed_content(gateway_url: str, tokens: dict[str, str]) -> list[str]:
    seeded = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as api:
        for service in demo.SEED_ORDER:
            name = f"deploy.demo.{service}"
            if importlib.util.find_spec(name) is None:
                continue
            module = importlib.import_module(name)
            await module.seed(api, tokens, demo.ECOSYSTEM)
            seeded.append(service)
    return seeded


async def seed_and_describe(
    launcher: Launcher, creds: dict[str, Any], seed: bool
) -> dict[str, Any]:
    issuer = issuer_for(launcher.identity_url, demo.ECOSYSTEM)
    client = creds["clients"]["northwind-backend"]
    async with httpx.AsyncClient(timeout=30) as http:
        backend = await client_credentials(
            http,
            issuer,
            client["client_id"],
            client["client_secret"],
            "profile:read directory:read mesh:ping",
        )
        seeded = (
            await seed_content(launcher.gateway_url, await people_tokens(http, issuer))
            if seed
            else []
        )
        token_endpoint = (await http.get(f"{issuer}/.well-known/openid-configuration")).json()[
            "token_endpoint"
        ]
    info: dict[str, Any] = {
        "ecosystem": demo.ECOSYSTEM,
        "issuer": issuer,
        "token_endpoint": token_endpoint,
        "gateway": launcher.gateway_url,
        "gateway_metrics": f"http://127.0.0.1:{launcher.ports.observe('gateway')}/metrics",
        "identity": launcher.identity_url,
        "openapi": f"{launcher.gateway_url}/openapi.json",
        "docs": f"{launcher.gateway_url}/docs",
        "nats": launcher.nats_url,
        # the bus admits only its processes' keys; operators' tools use this one
        "nats_ops_seed": str(launcher.keyring.seed_file("ops")),
        "portal": f"http://127.0.0.1:{launcher.ports.portal}"
        if any(c.name == "portal" for c in launcher.children)
        else None,
        "people": {
            u: {"partner": p, "roles": r, "password": demo.PASSWORD}
            for u, (p, r) in demo.PEOPLE.items()
        },
        "clients": creds["clients"],
        "example_token": backend["access_token"],
        "seeded": seeded,
        "logs": str(launcher.var / "log"),
    }
    info["curl"] = curl_example(info, client["client_id"], client["client_secret"])
    info["text"] = describe(info)
    return info


PICK_TOKEN = "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"


def curl_example(info: dict[str, Any], client_id: str, secret: str) -> str:
    return (
        f"TOKEN=$(curl -s -u {client_id}:{secret} "
        f"-d grant_type=client_credentials -d 'scope=directory:read profile:read mesh:ping' "
        f"{info['token_endpoint']} | python3 -c {PICK_TOKEN})\n"
        f'curl -s -H "Authorization: Bearer $TOKEN" '
        f"'{info['gateway']}/v1/ecosystems/{info['ecosystem']}/directory?q=logistics'"
    )


def describe(info: dict[str, Any]) -> str:
    lines = [
        f"  gateway   {info['gateway']}   (API docs: {info['docs']})",
        f"            metrics on the operations port: {info['gateway_metrics']}",
        f"  identity  {info['issuer']}   (OIDC issuer of ecosystem '{info['ecosystem']}')",
    ]
    if info["portal"]:
        lines.append(f"  portal    {info['portal']}")
    lines += [
        f"  nats      {info['nats']}   (no anonymous access; operators' key: "
        f"{info['nats_ops_seed']})",
        "",
        f"Demo people (password '{demo.PASSWORD}'):",
    ]
    for username, person in info["people"].items():
        lines.append(f"  {username:<8} {person['partner']:<10} {', '.join(person['roles'])}")
    lines += ["", "Back-end clients (client credentials):"]
    for client in info["clients"].values():
        if client.get("client_secret") and client["client_id"].endswith("-backend"):
            lines.append(f"  {client['client_id']:<20} secret {client['client_secret']}")
    lines += [
        "",
        "Try it:",
        info["curl"],
        "",
        f"All of this is in {info['logs'].rsplit('/', 1)[0]}/mesh.json; logs in {info['logs']}/.",
        "Press Ctrl-C to stop the mesh.",
    ]
    return "\n".join(lines)
