"""Every grant end to end driven by authlib's own OAuth 2 client (the other side's library)."""

from __future__ import annotations

import re
from html import unescape

import httpx
import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from identity.cli.seed import PASSWORD
from tests.identity.conftest import CLI_REDIRECT, IdP
from tests.support.text import first_group

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"


def _hidden(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {k: unescape(v) for k, v in found}


class TestAuthlibClient:
    async def test_client_credentials(self, idp: IdP) -> None:
        async with AsyncOAuth2Client(
            "northwind-backend", idp.secret("northwind-backend"), scope="directory:read"
        ) as client:
            token = await client.fetch_token(f"{idp.issuer}/token", grant_type="client_credentials")
        assert token["scope"] == "directory:read"

    async def test_authorization_code_with_pkce_then_refresh(self, idp: IdP) -> None:
        verifier = "v" * 64
        async with AsyncOAuth2Client(
            "mesh-cli",
            redirect_uri=CLI_REDIRECT,
            scope="openid forum:read",
            token_endpoint_auth_method="none",
            code_challenge_method="S256",
        ) as client:
            url, state = client.create_authorization_url(
                f"{idp.issuer}/authorize", code_verifier=verifier
            )
            assert create_s256_code_challenge(verifier) in url
            async with httpx.AsyncClient() as browser:
                resp = await browser.get(url)
                page = await browser.get(idp.url + resp.headers["location"])
                resp = await browser.post(
                    f"{idp.issuer}/login",
                    data={**_hidden(page.text), "username": "carlos", "password": PASSWORD},
                )
                resp = await browser.get(idp.url + resp.headers["location"])
                if resp.status_code == 200:  # consent
                    action = first_group(r'action="([^"]+)"', resp.text)
                    resp = await browser.post(
                        idp.url + unescape(action), data={**_hidden(resp.text), "decision": "allow"}
                    )
            callback = resp.headers["location"]
            token = await client.fetch_token(
                f"{idp.issuer}/token",
                authorization_response=callback,
                code_verifier=verifier,
                state=state,
            )
            assert token["id_token"] and token["refresh_token"]
            renewed = await client.refresh_token(f"{idp.issuer}/token")
        assert renewed["refresh_token"] != token["refresh_token"]
        claims = jwt.decode(renewed["access_token"], options={"verify_signature": False})
        assert claims["partner"] == "contoso"

    async def test_token_exchange(self, idp: IdP) -> None:
        person = await idp.person_tokens("noah", "openid forum:read")
        async with AsyncOAuth2Client("portal", idp.secret("portal")) as client:
            token = await client.fetch_token(
                f"{idp.issuer}/token",
                grant_type=EXCHANGE,
                subject_token=person["access_token"],
                subject_token_type=AT,
            )
        assert token["issued_token_type"] == AT
        assert jwt.decode(token["access_token"], options={"verify_signature": False})["act"] == {
            "sub": "portal",
            "client_id": "portal",
        }
