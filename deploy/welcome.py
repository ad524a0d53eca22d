"""After start-up: seed demo content through the gateway and tell the user how to use the mesh."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from collections.abc import Iterable
from pathlib import Path
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


async def people_tokens(
    http: httpx.AsyncClient, issuer: str, people: Iterable[str] = tuple(demo.PEOPLE)
) -> dict[str, str]:
    from identity.cli.devclient import login

    tokens = {}
    for username in people:
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


async def seed_content(
    gateway_url: str, tokens: dict[str, str], connector: dict[str, Any] | None = None
) -> list[str]:
    """Seed each service's demo content; ``connector`` holds the demo back-ends' URLs, the
    state directory and the back-end clients (the connector seed needs them)."""
    seeded = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as api:
        for service in demo.SEED_ORDER:
            name = f"deploy.demo.{service}"
            if importlib.util.find_spec(name) is None:
                continue
            module = importlib.import_module(name)
            extra = (connector or {}) if service == "connector" else {}
            await module.seed(api, tokens, demo.ECOSYSTEM, **extra)
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
        connector = {
            "backends": launcher.demo_urls,
            "var": launcher.var,
            "clients": creds["clients"],
        }
        tokens = await people_tokens(http, issuer) if seed else {}
        seeded = await seed_content(launcher.gateway_url, tokens, connector) if seed else []
        allied = await seed_alliance(launcher, http, tokens) if seed else None
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
        "portal": launcher.portal_url
        if any(c.name == "portal" for c in launcher.children)
        else None,
        "demo_backends": launcher.demo_urls if seed else {},
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
    if seed and "connector" in seeded:
        flow_file = launcher.var / "demo-flow.json"
        flow_file.write_text(json.dumps(demo_flow(), indent=2) + "\n")
        info["demo"] = demo_examples(info, creds["clients"], flow_file)
    if allied is not None:
        info["alliance"] = {**allied, "examples": alliance_examples(info, creds, allied)}
    info["text"] = describe(info)
    return info


async def seed_alliance(
    launcher: Launcher, http: httpx.AsyncClient, tokens: dict[str, str]
) -> dict[str, Any]:
    """The second ecosystem's content and its alliance with the demo ecosystem."""
    from deploy.demo import alliance

    issuer = issuer_for(launcher.identity_url, alliance.ALLY)
    ally_tokens = await people_tokens(http, issuer, alliance.ALLY_PEOPLE)
    async with (
        httpx.AsyncClient(base_url=launcher.gateway_url, timeout=30) as api,
        httpx.AsyncClient(base_url=launcher.identity_url, timeout=30) as identity,
    ):
        return await alliance.seed(api, identity, tokens, ally_tokens)


def alliance_examples(
    info: dict[str, Any], creds: dict[str, Any], allied: dict[str, Any]
) -> dict[str, str]:
    """Shell commands (bash) that show the alliance: a federated directory search and an
    allied card as Northwind's back-end (acme), and Wide World's back-end (meridian)
    invoking contoso's operation with its token exchanged into acme."""
    from deploy.demo import alliance

    ally = creds["allies"][alliance.ALLY]
    api = f"{info['gateway']}/v1/ecosystems/{info['ecosystem']}"
    scope = "directory:read profile:read"
    read = _token("TOKEN", creds["clients"]["northwind-backend"], scope, info["token_endpoint"])
    get = f'{read}\ncurl -s -H "Authorization: Bearer $TOKEN"'
    ww = ally["clients"]["wideworld-backend"]
    ally_endpoint = info["token_endpoint"].replace(
        f"/eco/{info['ecosystem']}/", f"/eco/{alliance.ALLY}/"
    )
    exchange = (
        f"AT=$(curl -s -u {ww['client_id']}@{alliance.ALLY}:{ww['client_secret']} "
        f"-d grant_type={EXCHANGE} -d subject_token=$WW "
        f"-d subject_token_type=urn:ietf:params:oauth:token-type:access_token "
        f"-d 'scope=connector:invoke' {info['token_endpoint']} | python3 -c {PICK_TOKEN})"
    )
    json_post = "-H 'Content-Type: application/json'"
    return {
        "search": f"{get} '{api}/directory?q=cargo&allied=true'",
        "card": f"{get} {api}/allies/{alliance.ALLY}/people/{allied['people']['tara']}/card",
        "invoke": (
            f"{_token('WW', ww, 'connector:invoke', ally_endpoint)}\n{exchange}\n"
            f'curl -s -X POST -H "Authorization: Bearer $AT" {json_post} '
            f"""-d '{{"input": {{"sku": "A-1"}}}}' {api}/operations/contoso.stock-level/invoke"""
        ),
    }


def demo_flow() -> dict[str, Any]:
    """The supply-chain flow across fabrikam, contoso and northwind (body of POST /flows)."""
    from deploy.demo.connector import FLOW_INPUT, FLOW_STEPS

    return {"name": "Restock A-1", "input": FLOW_INPUT, "steps": FLOW_STEPS}


def _token(var: str, client: dict[str, Any], scope: str, endpoint: str) -> str:
    return (
        f"{var}=$(curl -s -u {client['client_id']}:{client['client_secret']} "
        f"-d grant_type=client_credentials -d 'scope={scope}' "
        f"{endpoint} | python3 -c {PICK_TOKEN})"
    )


def demo_examples(info: dict[str, Any], clients: dict[str, Any], flow: Path) -> dict[str, str]:
    """Shell commands (bash) that drive the demo back-ends through the gateway."""
    api = f"{info['gateway']}/v1/ecosystems/{info['ecosystem']}"
    scope = "connector:invoke connector:read connector:admin"
    nw = _token("NW", clients["northwind-backend"], scope, info["token_endpoint"])
    co = _token("CO", clients["contoso-backend"], scope, info["token_endpoint"])
    json_post = "-H 'Content-Type: application/json'"
    first = 'python3 -c \'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])\''
    return {
        "invoke": (
            f"{nw}\n"
            f'curl -s -X POST -H "Authorization: Bearer $NW" {json_post} '
            f"""-d '{{"input": {{"sku": "A-1"}}}}' {api}/operations/contoso.stock-level/invoke"""
        ),
        "flow": (
            f"{nw}\n"
            f'curl -s -X POST -H "Authorization: Bearer $NW" {json_post} -d @{flow} {api}/flows'
        ),
        "deliveries": (
            f"{co}\n"
            f'SUB=$(curl -s -H "Authorization: Bearer $CO" '
            f"{api}/partners/contoso/webhooks/subscriptions | {first})\n"
            f'curl -s -H "Authorization: Bearer $CO" '
            f"{api}/partners/contoso/webhooks/subscriptions/$SUB/deliveries"
        ),
        "replay": (
            f"{co}\n"
            f'SUB=$(curl -s -H "Authorization: Bearer $CO" '
            f"{api}/partners/contoso/webhooks/subscriptions | {first})\n"
            f'DELIVERY=$(curl -s -H "Authorization: Bearer $CO" '
            f"{api}/partners/contoso/webhooks/subscriptions/$SUB/deliveries | {first})\n"
            f'curl -s -X POST -H "Authorization: Bearer $CO" '
            f"{api}/partners/contoso/webhooks/deliveries/$DELIVERY/replay"
        ),
    }


EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
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
    ]
    if info.get("demo"):
        lines += ["Demo back-ends (contoso, northwind, fabrikam) on loopback:"]
        lines += [f"  {p:<10} {u}" for p, u in info["demo_backends"].items()]
        lines += [
            "",
            "Contoso's stock level, called by Northwind's back-end through the connector:",
            info["demo"]["invoke"],
            "",
            "A supply-chain flow across fabrikam, contoso and northwind:",
            info["demo"]["flow"],
            "",
            "Contoso's webhook delivery log (northwind reports shipment.delivered):",
            info["demo"]["deliveries"],
            "",
        ]
    if info.get("alliance"):
        allied = info["alliance"]
        lines += [
            f"Alliance {allied['alliance']}: '{info['ecosystem']}' and '{allied['ecosystem']}' "
            f"({allied['name']}) share people; people of '{allied['ecosystem']}' sign in at "
            f"{info['identity']}/eco/{allied['ecosystem']} (" + ", ".join(allied["logins"]) + ").",
            "A federated directory search (only fields flagged for allied ecosystems cross):",
            allied["examples"]["search"],
            "",
            "Tara's card, from the allied ecosystem:",
            allied["examples"]["card"],
            "",
            "Wide World's back-end (meridian) asks Contoso's ERP (acme) for its stock, with its",
            "token exchanged into acme (contoso granted the operation across the alliance):",
            allied["examples"]["invoke"],
            "",
        ]
    lines += [
        f"All of this is in {info['logs'].rsplit('/', 1)[0]}/mesh.json; logs in {info['logs']}/.",
        "Press Ctrl-C to stop the mesh.",
    ]
    return "\n".join(lines)
