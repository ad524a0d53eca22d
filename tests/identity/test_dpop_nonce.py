"""DPoP server nonces (RFC 9449 §8) at the token endpoint of an ecosystem that demands them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.identity.conftest import IdP
from tests.support.dpop import DPoPKey
from tests.support.identity import serve_idp, start_idp


@pytest.fixture(scope="module")
async def idp(
    nats_url: str,
    idp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
) -> AsyncIterator[IdP]:
    """The demo provider with server nonces demanded in ecosystem acme."""
    settings, creds, app = await start_idp(
        nats_url,
        idp_database,
        tmp_path_factory.mktemp("w"),
        demo_hashes,
        dpop_nonce_ecosystems=["acme"],
    )
    async with serve_idp(app, settings.port) as url, httpx.AsyncClient(timeout=10) as http:
        yield IdP(url, settings, creds, http)
    await asyncio.sleep(0)


async def _cc(idp: IdP, proof: str) -> httpx.Response:
    client = "fabrikam-backend"
    return await idp.http.post(
        f"{idp.issuer}/token",
        data={"grant_type": "client_credentials"},
        auth=(client, idp.secret(client)),
        headers={"DPoP": proof},
    )


class TestNonceChallenge:
    async def test_round_trip(self, idp: IdP) -> None:
        key = DPoPKey()
        url = f"{idp.issuer}/token"
        first = await _cc(idp, key.proof("POST", url))
        assert first.status_code == 400
        assert first.json()["error"] == "use_dpop_nonce"
        nonce = first.headers["DPoP-Nonce"]
        second = await _cc(idp, key.proof("POST", url, nonce=nonce))
        assert second.status_code == 200, second.text
        assert second.json()["token_type"] == "DPoP"
        assert second.headers["DPoP-Nonce"]  # the next nonce rides on every response

    async def test_a_made_up_nonce_is_challenged_again(self, idp: IdP) -> None:
        key = DPoPKey()
        resp = await _cc(idp, key.proof("POST", f"{idp.issuer}/token", nonce="guessed"))
        assert resp.status_code == 400 and resp.json()["error"] == "use_dpop_nonce"
        assert resp.headers["DPoP-Nonce"] != "guessed"

    async def test_requests_without_dpop_are_not_challenged(self, idp: IdP) -> None:
        client = "fabrikam-backend"
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=(client, idp.secret(client)),
        )
        assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer"
