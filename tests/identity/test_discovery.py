"""Discovery checks (as the OpenID conformance suite's discovery verification) and JWKS."""

from __future__ import annotations

import pytest

from identity.domain.tokens import KNOWN_SCOPES
from tests.identity.conftest import IdP


class TestDiscovery:
    async def test_issuer_matches_and_endpoints_are_under_it(self, idp: IdP) -> None:
        resp = await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")
        assert resp.status_code == 200
        meta = resp.json()
        assert meta["issuer"] == idp.issuer
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "introspection_endpoint",
            "revocation_endpoint",
            "end_session_endpoint",
        ):
            assert meta[name].startswith(idp.issuer + "/"), name
        assert meta["response_types_supported"] == ["code"]
        assert "public" in meta["subject_types_supported"]
        assert "RS256" in meta["id_token_signing_alg_values_supported"]
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert set(meta["scopes_supported"]) == set(KNOWN_SCOPES)
        assert "openid" in meta["scopes_supported"]
        assert {"client_secret_basic", "client_secret_post", "private_key_jwt"} <= set(
            meta["token_endpoint_auth_methods_supported"]
        )

    async def test_every_advertised_endpoint_answers(self, idp: IdP) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        assert (await idp.http.get(meta["jwks_uri"])).status_code == 200
        # token/introspect/revoke exist: a POST without credentials is an OAuth error, not 404/405
        for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
            resp = await idp.http.post(meta[name], data={})
            assert resp.status_code in (400, 401), name
            assert "error" in resp.json()

    async def test_a_wrong_method_is_a_405_naming_the_allowed_ones(self, idp: IdP) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        resp = await idp.http.delete(meta["jwks_uri"])
        assert resp.status_code == 405
        assert resp.headers["allow"] == "GET"  # RFC 9110 15.5.6
        resp = await idp.http.put(meta["token_endpoint"], data={})
        assert resp.status_code == 405
        assert resp.headers["allow"] == "POST"

    async def test_rfc8414_metadata_at_both_locations(self, idp: IdP) -> None:
        inserted = f"{idp.url}/.well-known/oauth-authorization-server/eco/{idp.eco}"
        appended = f"{idp.issuer}/.well-known/oauth-authorization-server"
        for url in (inserted, appended):
            resp = await idp.http.get(url)
            assert resp.status_code == 200
            assert resp.json()["issuer"] == idp.issuer

    async def test_unknown_ecosystem_is_404(self, idp: IdP) -> None:
        resp = await idp.http.get(f"{idp.url}/eco/nowhere/.well-known/openid-configuration")
        assert resp.status_code == 404
        assert resp.json()["code"] == "not_found"


class TestJwks:
    async def test_only_public_signing_keys(self, idp: IdP) -> None:
        keys = (await idp.http.get(f"{idp.issuer}/jwks")).json()["keys"]
        # per algorithm: the active key and the next one, published before use
        assert sorted(k["alg"] for k in keys) == ["ES256", "ES256", "RS256", "RS256"]
        for key in keys:
            assert key["use"] == "sig"
            assert (key["kty"], key["alg"]) in {("RSA", "RS256"), ("EC", "ES256")}
            assert key["kid"]
            assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private material"

    @pytest.mark.parametrize("path", ["/jwks", "/.well-known/openid-configuration"])
    async def test_ecosystems_do_not_share_keys(self, idp: IdP, path: str) -> None:
        resp = await idp.http.get(f"{idp.url}/eco/other{path}")
        assert resp.status_code == 404


class TestOperations:
    async def test_health_readiness_and_metrics(self, idp: IdP) -> None:
        assert (await idp.http.get(f"{idp.url}/healthz")).json() == {"status": "ok"}
        assert (await idp.http.get(f"{idp.url}/readyz")).json() == {"status": "ready"}
        await idp.http.get(f"{idp.issuer}/jwks")
        body = (await idp.http.get(f"{idp.url}/metrics")).text
        assert 'route="/eco/{eco}/jwks"' in body and "pm_http_requests_total" in body
