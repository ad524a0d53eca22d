"""Alliances: a token of one ecosystem exchanged (RFC 8693) at another, with a ``fed`` claim."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from identity.cli import commands, seed
from identity.cli.devclient import login
from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.conftest import CLI_REDIRECT, IdP

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
ALLIANCE_RULE = {
    "client": "portal",
    "from_ecosystems": ["globex"],
    "partner": {"globex-corp": "acme-hq"},
    "roles": ["member", "operator"],
    "scopes": ["directory:read", "forum:read", "admin"],
}


@pytest.fixture(scope="module")
async def gina(idp: IdP) -> str:
    """An operator of a second ecosystem (globex) of the same deployment, and her token there."""
    created = await commands.create_ecosystem(
        idp.settings,
        "globex",
        "Globex Alliance",
        ("globex-corp", "Globex Corp"),
        "gina",
        "globex-password-1",
    )
    assert created["issuer"] == f"{idp.url}/eco/globex"
    async with httpx.AsyncClient() as browser:
        tokens = await login(
            browser,
            created["issuer"],
            "mesh-cli",
            "gina",
            "globex-password-1",
            CLI_REDIRECT,
            "openid directory:read forum:read admin",
        )
    olivia = (await idp.person_tokens("olivia"))["access_token"]
    resp = await idp.http.put(
        f"{idp.issuer}/admin/exchange-rules",
        json={"rules": [*seed.EXCHANGE_RULES, ALLIANCE_RULE]},
        headers={"Authorization": f"Bearer {olivia}"},
    )
    assert resp.status_code == 200
    return str(tokens["access_token"])


async def _exchange(idp: IdP, client: str, token: str, **extra: Any) -> httpx.Response:
    return await idp.http.post(
        f"{idp.issuer}/token",
        data={"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": AT, **extra},
        auth=(client, idp.secret(client)),
    )


class TestAlliance:
    async def test_partner_of_another_ecosystem_gets_a_local_token_with_fed(
        self, idp: IdP, gina: str
    ) -> None:
        resp = await _exchange(idp, "portal", gina)
        assert resp.status_code == 200, resp.text
        async with httpx.AsyncClient() as http:
            verifier = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)
            claims = await verifier.verify(resp.json()["access_token"])
        assert claims.eco == "acme" and claims.iss == idp.issuer
        assert claims.partner == "acme-hq" and [str(r) for r in claims.roles] == ["member"]
        assert claims.fed is not None and claims.fed.eco == "globex"
        assert claims.fed.iss == f"{idp.url}/eco/globex" and claims.fed.partner == "globex-corp"
        assert claims.act is not None and claims.act.sub == "portal"
        # admin was held upstream and allowed by the rule, but a member may not hold it here
        assert claims.scopes == {"directory:read", "forum:read"}

    async def test_client_without_an_alliance_rule_is_refused(self, idp: IdP, gina: str) -> None:
        resp = await _exchange(idp, "contoso-backend", gina)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"

    async def test_foreign_token_is_not_valid_here_by_itself(self, idp: IdP, gina: str) -> None:
        resp = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {gina}"}
        )
        assert resp.status_code == 401
        olivia_admin = await idp.http.get(
            f"{idp.issuer}/admin/people", headers={"Authorization": f"Bearer {gina}"}
        )
        assert olivia_admin.status_code == 401

    async def test_bootstrapping_an_existing_ecosystem_fails_cleanly(
        self, idp: IdP, gina: str
    ) -> None:
        with pytest.raises(commands.CliError, match="exists"):
            await commands.create_ecosystem(
                idp.settings, "globex", "Again", ("x", "X"), "y", "zzzzzz"
            )
