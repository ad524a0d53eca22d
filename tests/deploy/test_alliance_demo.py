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
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.test_launcher import offset_with_free_ports, start_up

pytestmark = pytest.mark.slow
ECO, ALLY = "acme", "meridian"
SCOPES = "openid " + " ".join(
    [
        "profile:read",
        "profile:write",
        "directory:read",
        "matching:read",
        "matching:write",
        "broker:curate",
        "connector:read",
        "connector:invoke",
        "connector:admin",
        "admin",
    ]
)
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


class Mesh:
    """The launched mesh: its ``mesh.json``, the demo's credentials, and sign-ins."""

    def __init__(self, info: dict[str, Any], creds: dict[str, Any]) -> None:
        self.info = info
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
        yield Mesh(info, creds)
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
        text = Path(mesh.info["logs"]).parent.joinpath("mesh.json").read_text()
        assert examples["search"] in text
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

        # a card across shows exactly what Tara shares; Walter does not exist across
        allies = f"/v1/ecosystems/{ECO}/allies/{ALLY}/people"
        card = mesh.api.get(f"{allies}/{tara}/card", headers=mesh.auth("noah"))
        assert card.status_code == 200, card.text
        assert card.json()["headline"] == "Head of air cargo sales, Tailspin Air Cargo"
        hidden = mesh.api.get(f"{allies}/{walter}/card", headers=mesh.auth("noah"))
        assert hidden.status_code == 404, hidden.text

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

        for refused in (search_refuses, card_refuses):
            eventually(refused)
