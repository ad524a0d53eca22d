"""An alliance across every process, as ``make run`` seeds it: ``acme`` and ``meridian``.

The mesh is started by the launcher (``partnermesh up``: nats-server, identity, gateway,
the four services, the portal, as separate processes). Its demo agreed the alliance
through identity's lifecycle (acme proposed, meridian accepted), flagged some fields for
allied ecosystems and granted contoso's stock level to meridian's wideworld. Then, over
real HTTP: the federated directory finds a flagged person of the other ecosystem and not
an unflagged one, a card crosses, an introduction across is accepted by both, wideworld's
back-end invokes the operation with its token exchanged into acme; meridian's operator
ends the alliance, and each of those is refused.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from contracts.claims import ALL_SCOPES
from tests.deploy.test_launcher import offset_with_free_ports, start_up

pytestmark = pytest.mark.slow
ECO, ALLY = "acme", "meridian"
SCOPES = "openid " + " ".join(sorted(ALL_SCOPES))
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


class Mesh:
    """The launched mesh: its ``mesh.json``, the demo's credentials, and sign-ins."""

    def __init__(self, info: dict[str, Any], creds: dict[str, Any], output: str) -> None:
        self.info = info
        self.output = output
        self.creds = creds
        self.ally = creds["allies"][ALLY]
        self.api = httpx.Client(base_url=info["gateway"], timeout=15)
        self.identity = httpx.Client(base_url=info["identity"], timeout=15)
        self.tokens: dict[str, str] = {}

    def person(self, username: str) -> str:
        """An access token of a demo person of either ecosystem, through the login pages."""
        if username not in self.tokens:
            from identity.cli.devclient import login

            eco = ALLY if username in self.ally["people"] else ECO
            issuer = f"{self.info['identity']}/eco/{eco}"
            people = self.ally["people"] if eco == ALLY else self.creds["people"]
            password = people[username]["password"]

            async def work() -> str:
                async with httpx.AsyncClient(timeout=15) as http:
                    result = await login(
                        http,
                        issuer,
                        "mesh-cli",
                        username,
                        password,
                        "http://127.0.0.1:8099/callback",
                        SCOPES,
                    )
                return str(result["access_token"])

            self.tokens[username] = asyncio.run(work())
        return self.tokens[username]

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.person(username)}"}

    def backend(self, eco: str, client_id: str, scope: str) -> str:
        """A client-credentials token of a demo back-end of ``eco``."""
        clients = self.ally["clients"] if eco == ALLY else self.creds["clients"]
        client = clients[client_id]
        reply = self.identity.post(
            f"/eco/{eco}/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(client_id, client["client_secret"]),
        )
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    def exchanged(self, scope: str = "connector:invoke") -> httpx.Response:
        """wideworld's back-end token of meridian, exchanged at acme's token endpoint, where
        a client of meridian authenticates as ``<client>@meridian``."""
        own = self.backend(ALLY, "wideworld-backend", scope)
        secret = self.ally["clients"]["wideworld-backend"]["client_secret"]
        return self.identity.post(
            f"/eco/{ECO}/token",
            data={
                "grant_type": EXCHANGE,
                "subject_token": own,
                "subject_token_type": ACCESS_TOKEN,
                "scope": scope,
            },
            auth=(f"wideworld-backend@{ALLY}", secret),
        )

    def who(self, username: str) -> str:
        return str(self.info["alliance"]["people"][username])


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The mesh started by the launcher, with its demo alliance between acme and meridian."""
    var = tmp_path_factory.mktemp("alliance") / "var"
    proc, output = start_up(var, offset_with_free_ports())
    try:
        info_path = var / "mesh.json"
        assert info_path.exists(), f"launcher did not come up:\n{output}"
        info = json.loads(info_path.read_text())
        creds = json.loads((var / "demo-identity.json").read_text())
        yield Mesh(info, creds, output)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    """Poll ``check`` until it holds (effects travel over the bus)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{check.__doc__ or check} never held"
        time.sleep(0.05)


def search(mesh: Mesh, username: str, q: str, allied: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {"q": q, "page_size": 50}
    if allied:
        params["allied"] = "true"
    reply = mesh.api.get(
        f"/v1/ecosystems/{ECO}/directory", params=params, headers=mesh.auth(username)
    )
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def ids(page: dict[str, Any]) -> set[str]:
    return {e["id"] for e in page["entries"]}


class TestAllianceAcrossProcesses:
    def test_the_printed_examples_show_the_alliance(self, mesh: Mesh) -> None:
        examples = mesh.info["alliance"]["examples"]
        for example in examples.values():  # printed as they are in mesh.json
            assert example in mesh.output
        pasted = subprocess.run(
            ["bash", "-c", examples["search"]], capture_output=True, text=True, timeout=30
        )
        assert pasted.returncode == 0, pasted.stderr
        found = json.loads(pasted.stdout)
        assert mesh.who("tara") in ids(found), pasted.stdout
        assert {e["ecosystem"] for e in found["entries"]} == {ALLY}
        card = subprocess.run(
            ["bash", "-c", examples["card"]], capture_output=True, text=True, timeout=30
        )
        assert json.loads(card.stdout)["headline"].startswith("Head of air cargo"), card.stdout

    def test_agreed_found_met_and_called_across_then_ended(self, mesh: Mesh) -> None:
        alliance = mesh.info["alliance"]["alliance"]
        listed = mesh.identity.get(f"/eco/{ALLY}/admin/alliances", headers=mesh.auth("mira"))
        assert listed.status_code == 200, listed.text
        mine = next(a for a in listed.json() if a["alliance"] == alliance)
        assert mine["status"] == "active" and set(mine["ecosystems"]) == {ECO, ALLY}

        # the federated directory: Tara flagged her fields, Walter and Theo did not
        tara, walter, theo = mesh.who("tara"), mesh.who("walter"), mesh.who("theo")
        found = search(mesh, "noah", "cargo")
        assert tara in ids(found)
        assert not {walter, theo} & ids(found)
        entry = next(e for e in found["entries"] if e["id"] == tara)
        assert (entry["ecosystem"], entry["ecosystem_name"]) == (ALLY, "Meridian Trade Network")
        assert not ids(search(mesh, "noah", "cargo", allied=False)) & {tara, walter, theo}
        # ... though their own ecosystem finds all three for the same words
        path = f"/v1/ecosystems/{ALLY}/directory"
        home = mesh.api.get(path, params={"q": "cargo"}, headers=mesh.auth("mira"))
        assert {tara, walter, theo} <= ids(home.json()), home.text

        # a card across shows exactly what Tara shares; Walter does not exist across
        allies = f"/v1/ecosystems/{ECO}/allies/{ALLY}/people"
        card = mesh.api.get(f"{allies}/{tara}/card", headers=mesh.auth("noah"))
        assert card.status_code == 200, card.text
        assert card.json()["headline"] == "Head of air cargo sales, Tailspin Air Cargo"
        hidden = mesh.api.get(f"{allies}/{walter}/card", headers=mesh.auth("noah"))
        assert hidden.status_code == 404, hidden.text

        # the introduction across the demo made (curated by meridian's broker): each
        # person accepts in their own ecosystem, and they are connected
        intro = mesh.info["alliance"]["introduction"]
        for eco, username in ((ECO, "nadia"), (ALLY, "wanda")):
            path = f"/v1/ecosystems/{eco}/introductions/{intro}/accept"
            accepted = mesh.api.post(path, json={}, headers=mesh.auth(username))
            assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "connected", accepted.text
        # a second one, left open: the end withdraws it
        intros = f"/v1/ecosystems/{ECO}/introductions"
        body = {"a": mesh.who("carlos"), "b": tara, "b_eco": ALLY, "note": "air cargo"}
        pending = mesh.api.post(intros, json=body, headers=mesh.auth("bruno"))
        assert pending.status_code == 201, pending.text
        pending_id = pending.json()["id"]

        # wideworld's back-end calls contoso's operation with its token exchanged into acme
        exchange = mesh.exchanged()
        assert exchange.status_code == 200, exchange.text
        across = {"Authorization": f"Bearer {exchange.json()['access_token']}"}
        invoke = f"/v1/ecosystems/{ECO}/operations/contoso.stock-level/invoke"
        called = mesh.api.post(invoke, json={"input": {"sku": "A-1"}}, headers=across)
        assert called.status_code == 200, called.text
        assert called.json()["output"]["sku"] == "A-1"

        ended = mesh.identity.post(
            f"/eco/{ALLY}/admin/alliances/{alliance}/end", json={}, headers=mesh.auth("mira")
        )
        assert ended.status_code == 200, ended.text
        assert ended.json()["status"] == "ended"

        def search_refuses() -> bool:
            """the federated search no longer finds Tara"""
            return tara not in ids(search(mesh, "noah", "cargo"))

        def card_refuses() -> bool:
            """Tara's card across is gone"""
            return (
                mesh.api.get(f"{allies}/{tara}/card", headers=mesh.auth("noah")).status_code == 404
            )

        def call_refused() -> bool:
            """the token exchanged before the end no longer calls contoso's operation"""
            reply = mesh.api.post(invoke, json={"input": {"sku": "A-1"}}, headers=across)
            return reply.status_code in (401, 403)

        def intro_withdrawn() -> bool:
            """the open introduction across is withdrawn"""
            path = f"{intros}/{pending_id}"
            status = mesh.api.get(path, headers=mesh.auth("bruno")).json()["status"]
            return bool(status == "withdrawn")

        for refused in (search_refuses, card_refuses, call_refused, intro_withdrawn):
            eventually(refused)
        # and nothing new crosses: acme no longer knows meridian's clients (no alliance
        # admits them), no introduction across, no acceptance of the withdrawn one
        no_exchange = mesh.exchanged()
        assert (no_exchange.status_code, no_exchange.json()["error"]) == (401, "invalid_client")
        again = mesh.api.post(intros, json=body, headers=mesh.auth("bruno"))
        assert again.status_code in (403, 404), again.text
        path = f"/v1/ecosystems/{ALLY}/introductions/{pending_id}/accept"
        late = mesh.api.post(path, json={}, headers=mesh.auth("tara"))
        assert late.status_code in (403, 404, 409), late.text
