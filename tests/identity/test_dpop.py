"""DPoP (RFC 9449) at the token endpoint, userinfo and introspection: every grant, every denial."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from joserfc import jwk as joserfc_jwk

from identity.domain.crypto import pkce_pair
from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.conftest import CLI_REDIRECT, IdP
from tests.identity.test_authorization_code import _code
from tests.support.dpop import DPoPKey, hs256_proof, tampered, unsigned_proof

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


async def cc(
    idp: IdP, client: str, headers: dict[str, str] | None = None, **data: str
) -> httpx.Response:
    return await idp.http.post(
        f"{idp.issuer}/token",
        data={"grant_type": "client_credentials", **data},
        auth=(client, idp.secret(client)),
        headers=headers or {},
    )


async def code_tokens(
    idp: IdP, key: DPoPKey | None, username: str = "noah", **authorize: str
) -> httpx.Response:
    """A code for mesh-cli (public) redeemed with a proof by ``key`` (none: Bearer)."""
    verifier, challenge = pkce_pair()
    async with httpx.AsyncClient() as browser:
        code = await _code(
            idp, browser, "mesh-cli", CLI_REDIRECT, username, challenge=challenge, **authorize
        )
    headers = {"DPoP": key.proof("POST", f"{idp.issuer}/token")} if key else {}
    return await idp.http.post(
        f"{idp.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLI_REDIRECT,
            "client_id": "mesh-cli",
            "code_verifier": verifier,
        },
        headers=headers,
    )


async def refresh(
    idp: IdP, refresh_token: str, key: DPoPKey | None, client: str = "mesh-cli"
) -> httpx.Response:
    headers = {"DPoP": key.proof("POST", f"{idp.issuer}/token")} if key else {}
    return await idp.http.post(
        f"{idp.issuer}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client},
        headers=headers,
    )


@pytest.fixture(scope="module")
async def olivia(idp: IdP) -> str:
    """An operator's access token (scope admin) for the admin API."""
    return str((await idp.person_tokens("olivia"))["access_token"])


@pytest.fixture(scope="module")
async def bound_client(idp: IdP, olivia: str) -> str:
    """A back-end client registered with dpop_bound_access_tokens: true; returns its secret."""
    resp = await idp.http.post(
        f"{idp.issuer}/admin/clients",
        headers={"Authorization": f"Bearer {olivia}"},
        json={
            "client_id": "dpop-backend",
            "name": "DPoP back-end",
            "partner": "northwind",
            "grant_types": ["client_credentials"],
            "scopes": ["directory:read"],
            "roles": ["member"],
            "dpop_bound_access_tokens": True,
        },
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["dpop_bound_access_tokens"] is True
    return str(resp.json()["client_secret"])


class TestThumbprint:
    @pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
    def test_matches_joserfc_rfc7638(self, alg: str) -> None:
        key = DPoPKey(alg)
        assert key.jkt == joserfc_jwk.import_key(key.public_jwk).thumbprint()

    def test_rfc7638_example(self) -> None:
        # RFC 7638 §3.1's example key and its published thumbprint
        example = {
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
            "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4Qy"
            "Q5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbIS"
            "D08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kE"
            "gU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        }
        from mesh.dpop import thumbprint

        assert thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


class TestDiscovery:
    async def test_advertises_dpop_algorithms(self, idp: IdP) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        assert set(meta["dpop_signing_alg_values_supported"]) == {
            "ES256",
            "RS256",
            "PS256",
            "EdDSA",
        }


class TestGrantsWithDPoP:
    @pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
    async def test_client_credentials_token_is_bound_to_the_key(self, idp: IdP, alg: str) -> None:
        key = DPoPKey(alg)
        resp = await cc(idp, "contoso-backend", {"DPoP": key.proof("POST", f"{idp.issuer}/token")})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["token_type"] == "DPoP"
        async with httpx.AsyncClient() as http:
            verifier = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)
            claims = await verifier.verify(body["access_token"])
        assert claims.cnf is not None and claims.cnf.jkt == key.jkt
        assert "DPoP-Nonce" not in resp.headers  # this ecosystem does not demand nonces

    async def test_without_a_proof_tokens_stay_bearer(self, idp: IdP) -> None:
        resp = await cc(idp, "contoso-backend")
        assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer"
        assert "cnf" not in claims_of(resp.json()["access_token"])

    @pytest.mark.parametrize("suffix", ["?a=b", "#frag", "?a=b#frag"])
    async def test_htu_is_compared_without_query_and_fragment(self, idp: IdP, suffix: str) -> None:
        key = DPoPKey()
        proof = key.proof("POST", f"{idp.issuer}/token{suffix}")
        resp = await cc(idp, "contoso-backend", {"DPoP": proof})
        assert resp.status_code == 200, resp.text

    async def test_htu_scheme_and_host_compare_case_insensitively(self, idp: IdP) -> None:
        htu = f"{idp.issuer}/token".replace("http://", "HTTP://")
        resp = await cc(idp, "contoso-backend", {"DPoP": DPoPKey().proof("POST", htu)})
        assert resp.status_code == 200, resp.text

    async def test_authorization_code_binds_access_and_refresh_token(self, idp: IdP) -> None:
        key = DPoPKey()
        resp = await code_tokens(idp, key)
        assert resp.status_code == 200, resp.text
        first = resp.json()
        assert first["token_type"] == "DPoP"
        assert claims_of(first["access_token"])["cnf"] == {"jkt": key.jkt}
        # the public client's refresh token is bound (introspection says to which key) ...
        seen = await idp.http.post(
            f"{idp.issuer}/introspect",
            data={"token": first["refresh_token"]},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        assert seen.json()["cnf"] == {"jkt": key.jkt}
        # ... and the same key refreshes it
        again = await refresh(idp, first["refresh_token"], key)
        assert again.status_code == 200, again.text
        assert again.json()["token_type"] == "DPoP"
        assert claims_of(again.json()["access_token"])["cnf"] == {"jkt": key.jkt}

    async def test_bound_refresh_token_refused_with_another_key(self, idp: IdP) -> None:
        key = DPoPKey()
        first = (await code_tokens(idp, key, "chloe")).json()
        other = await refresh(idp, first["refresh_token"], DPoPKey())
        assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
        bare = await refresh(idp, first["refresh_token"], None)
        assert bare.status_code == 400 and bare.json()["error"] == "invalid_grant"
        # the refusals did not consume or revoke it: its key still refreshes it
        assert (await refresh(idp, first["refresh_token"], key)).status_code == 200

    async def test_unbound_refresh_token_of_public_client_stays_unbound(self, idp: IdP) -> None:
        first = (await code_tokens(idp, None, "felix")).json()
        assert first["token_type"] == "Bearer"
        assert (await refresh(idp, first["refresh_token"], None)).status_code == 200

    async def test_token_exchange_binds_the_new_token(self, idp: IdP) -> None:
        person = await idp.person_tokens("noah", "openid forum:read profile:read")
        key = DPoPKey()
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": EXCHANGE,
                "subject_token": person["access_token"],
                "subject_token_type": AT,
                "scope": "forum:read",
            },
            auth=("portal", idp.secret("portal")),
            headers={"DPoP": key.proof("POST", f"{idp.issuer}/token")},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["token_type"] == "DPoP"
        claims = claims_of(resp.json()["access_token"])
        assert claims["cnf"] == {"jkt": key.jkt} and claims["act"]["sub"] == "portal"


class TestDPoPBoundClient:
    async def test_token_request_without_proof_is_refused(
        self, idp: IdP, bound_client: str
    ) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=("dpop-backend", bound_client),
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_dpop_proof"

    async def test_token_request_with_proof_is_bound(self, idp: IdP, bound_client: str) -> None:
        key = DPoPKey()
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=("dpop-backend", bound_client),
            headers={"DPoP": key.proof("POST", f"{idp.issuer}/token")},
        )
        assert resp.status_code == 200, resp.text
        assert claims_of(resp.json()["access_token"])["cnf"]["jkt"] == key.jkt


def bad_proofs(issuer: str) -> dict[str, dict[str, str] | list[tuple[str, str]]]:
    url = f"{issuer}/token"
    key = DPoPKey()
    with_private = {"DPoP": key.proof("POST", url, header={"jwk": key.private_jwk})}
    replayed = key.proof("POST", url)
    return {
        "bad_signature": {"DPoP": tampered(key.proof("POST", url))},
        "wrong_htm": {"DPoP": key.proof("GET", url)},
        "wrong_htu": {"DPoP": key.proof("POST", f"{issuer}/userinfo")},
        "other_host_htu": {"DPoP": key.proof("POST", url.replace("127.0.0.1", "localhost"))},
        "stale_iat": {"DPoP": key.proof("POST", url, iat=time.time() - 3600)},
        "future_iat": {"DPoP": key.proof("POST", url, iat=time.time() + 3600)},
        "private_key_in_jwk": with_private,
        "alg_none": {"DPoP": unsigned_proof("POST", url, key.public_jwk)},
        "hs256": {"DPoP": hs256_proof("POST", url)},
        "wrong_typ": {"DPoP": key.proof("POST", url, header={"typ": "JWT"})},
        "no_jwk": {"DPoP": key.proof("POST", url, header={"jwk": None})},
        "jwk_of_another_key": {
            "DPoP": key.proof("POST", url, header={"jwk": DPoPKey().public_jwk})
        },
        "missing_jti": {"DPoP": key.proof("POST", url, jti="")},
        "garbage": {"DPoP": "not-a-jws"},
        "two_headers": [("DPoP", key.proof("POST", url)), ("DPoP", key.proof("POST", url))],
        "replayed_jti": [("DPoP", replayed), ("X-Replay", replayed)],
    }


BAD = [
    "bad_signature",
    "wrong_htm",
    "wrong_htu",
    "other_host_htu",
    "stale_iat",
    "future_iat",
    "private_key_in_jwk",
    "alg_none",
    "hs256",
    "wrong_typ",
    "no_jwk",
    "jwk_of_another_key",
    "missing_jti",
    "garbage",
    "two_headers",
    "replayed_jti",
]


class TestBadProofs:
    @pytest.mark.parametrize("kind", BAD)
    async def test_is_invalid_dpop_proof(self, idp: IdP, kind: str) -> None:
        headers = bad_proofs(idp.issuer)[kind]
        if kind == "replayed_jti":  # first use passes, the second is a replay
            assert isinstance(headers, list)
            first = await cc(idp, "contoso-backend", {"DPoP": headers[0][1]})
            assert first.status_code == 200, first.text
            headers = [headers[0]]
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=("contoso-backend", idp.secret("contoso-backend")),
            headers=headers,
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "invalid_dpop_proof"
        assert "access_token" not in resp.json()


class TestDPoPJkt:
    async def test_code_bound_by_dpop_jkt_needs_that_key(self, idp: IdP) -> None:
        key = DPoPKey()
        verifier, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            code = await _code(
                idp,
                browser,
                "mesh-cli",
                CLI_REDIRECT,
                "nadia",
                challenge=challenge,
                dpop_jkt=key.jkt,
            )
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CLI_REDIRECT,
            "client_id": "mesh-cli",
            "code_verifier": verifier,
        }
        url = f"{idp.issuer}/token"
        wrong = await idp.http.post(url, data=data, headers={"DPoP": DPoPKey().proof("POST", url)})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        bare = await idp.http.post(url, data=data)
        assert bare.status_code == 400 and bare.json()["error"] == "invalid_grant"
        right = await idp.http.post(url, data=data, headers={"DPoP": key.proof("POST", url)})
        assert right.status_code == 200, right.text
        assert claims_of(right.json()["access_token"])["cnf"] == {"jkt": key.jkt}

    async def test_malformed_dpop_jkt_is_refused_at_authorize(self, idp: IdP) -> None:
        _, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            resp = await browser.get(
                f"{idp.issuer}/authorize",
                params={
                    "response_type": "code",
                    "client_id": "mesh-cli",
                    "redirect_uri": CLI_REDIRECT,
                    "scope": "openid",
                    "state": "s1",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "dpop_jkt": "not a thumbprint",
                },
            )
        assert resp.status_code == 302
        assert "error=invalid_request" in resp.headers["location"]


@pytest.fixture(scope="module")
async def bound(idp: IdP) -> tuple[DPoPKey, str]:
    """(key, DPoP-bound access token of a person with scope openid)."""
    key = DPoPKey()
    resp = await code_tokens(idp, key, "carlos", scope="openid profile profile:read")
    assert resp.status_code == 200, resp.text
    return key, str(resp.json()["access_token"])


class TestUserinfoAndIntrospection:
    async def test_userinfo_with_dpop_scheme_and_proof(
        self, idp: IdP, bound: tuple[DPoPKey, str]
    ) -> None:
        key, token = bound
        url = f"{idp.issuer}/userinfo"
        resp = await idp.http.get(url, headers=key.headers("GET", url, token))
        assert resp.status_code == 200, resp.text
        assert resp.json()["partner"] == "contoso"

    async def test_bound_token_as_bearer_is_refused(
        self, idp: IdP, bound: tuple[DPoPKey, str]
    ) -> None:
        _, token = bound
        resp = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 401
        challenge = resp.headers["www-authenticate"]
        assert challenge.startswith("DPoP ") and 'error="invalid_token"' in challenge

    async def test_proof_with_wrong_ath_is_refused(
        self, idp: IdP, bound: tuple[DPoPKey, str]
    ) -> None:
        key, token = bound
        url = f"{idp.issuer}/userinfo"
        headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, "other")}
        resp = await idp.http.get(url, headers=headers)
        assert resp.status_code == 401
        assert 'error="invalid_dpop_proof"' in resp.headers["www-authenticate"]

    async def test_proof_by_another_key_is_refused(
        self, idp: IdP, bound: tuple[DPoPKey, str]
    ) -> None:
        _, token = bound
        url = f"{idp.issuer}/userinfo"
        resp = await idp.http.get(url, headers=DPoPKey().headers("GET", url, token))
        assert resp.status_code == 401
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]

    async def test_dpop_scheme_without_proof_is_refused(
        self, idp: IdP, bound: tuple[DPoPKey, str]
    ) -> None:
        _, token = bound
        resp = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": f"DPoP {token}"}
        )
        assert resp.status_code == 401
        assert 'error="invalid_dpop_proof"' in resp.headers["www-authenticate"]

    async def test_introspection_reports_dpop_and_cnf(
        self, idp: IdP, bound: tuple[DPoPKey, str]
    ) -> None:
        key, token = bound
        resp = await idp.http.post(
            f"{idp.issuer}/introspect",
            data={"token": token},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        body = resp.json()
        assert body["active"] is True and body["token_type"] == "DPoP"
        assert body["cnf"] == {"jkt": key.jkt}
