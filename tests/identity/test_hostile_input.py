"""No input crashes the provider: depth bombs in DPoP proofs, tokens, assertions and bodies
get the error their protocol fixes (or a problem document, or an HTML page), never a 500;
an unexpected error is a problem or a page naming a request id, never plain text; the
client address that login throttling counts is the peer's unless a trusted proxy names
another."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Request
from nats.aio.client import Client
from pydantic import ValidationError

from identity.cli.seed import PASSWORD
from identity.settings import IdentitySettings
from tests.identity.conftest import IdP
from tests.identity.test_login_security import _events, _try_login
from tests.support.bombs import BOMBS, ODD_BODIES, b64url, compact, object_holding, token_bombs
from tests.support.dpop import DPoPKey
from tests.support.identity import serve_idp, start_idp

PROBLEM = "application/problem+json"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class Boom(RuntimeError):
    pass


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """A low address threshold, so the lockout test needs few attempts."""
    return {"login_max_failures_address": 3, "login_max_failures_account": 100}


@pytest.fixture(scope="module")
async def idp(
    nats_url: str,
    idp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
    idp_overrides: dict[str, Any],
) -> AsyncIterator[IdP]:
    """The demo provider, with one extra route that fails unexpectedly (``/boom``)."""
    settings, creds, app = await start_idp(
        nats_url, idp_database, tmp_path_factory.mktemp("w"), demo_hashes, **idp_overrides
    )

    async def boom(request: Request) -> None:
        raise Boom("secret internals that must not reach the caller")

    app.add_api_route("/boom", boom, methods=["GET"])
    async with serve_idp(app, settings.port) as url, httpx.AsyncClient(timeout=10) as http:
        yield IdP(url, settings, creds, http)
    await asyncio.sleep(0)


def proof_bombs(key: DPoPKey, htu: str) -> dict[str, str]:
    """Proofs by ``key`` whose header or payload is a depth bomb, by name."""
    good = key.proof("POST", htu).split(".")
    out = {}
    for kind, bomb in BOMBS.items():
        out[f"header-{kind}"] = f"{b64url(bomb)}.{good[1]}.{good[2]}"
        out[f"payload-{kind}"] = f"{good[0]}.{b64url(bomb)}.{good[2]}"
    return out


PROOFS = proof_bombs(DPoPKey(), "http://placeholder/token")


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"] == PROBLEM
    doc: dict[str, Any] = resp.json()
    assert doc["status"] == status and doc["request_id"] == resp.headers["x-request-id"]
    return doc


class TestTokenEndpoint:
    @pytest.mark.parametrize("proof", PROOFS.values(), ids=PROOFS.keys())
    async def test_a_nested_dpop_proof_is_an_invalid_dpop_proof(self, idp: IdP, proof: str) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "directory:read"},
            auth=("contoso-backend", idp.secret("contoso-backend")),
            headers={"DPoP": proof},
        )
        assert resp.status_code == 400, resp.text[:300]
        assert resp.json()["error"] == "invalid_dpop_proof"

    async def test_a_good_proof_still_binds_the_token(self, idp: IdP) -> None:
        key = DPoPKey()
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "directory:read"},
            auth=("contoso-backend", idp.secret("contoso-backend")),
            headers={"DPoP": key.proof("POST", f"{idp.issuer}/token")},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["token_type"] == "DPoP"

    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    async def test_a_nested_client_assertion_is_an_invalid_client(
        self, idp: IdP, token: str
    ) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "contoso-backend",
                "client_assertion_type": ASSERTION,
                "client_assertion": token,
            },
        )
        assert resp.status_code in (400, 401), resp.text[:300]
        assert resp.json()["error"] == "invalid_client"

    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    async def test_a_nested_subject_token_is_an_invalid_grant(self, idp: IdP, token: str) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": AT},
            auth=("portal", idp.secret("portal")),
        )
        assert resp.status_code == 400, resp.text[:300]
        assert resp.json()["error"] == "invalid_grant"

    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    async def test_introspecting_a_nested_token_says_inactive(self, idp: IdP, token: str) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/introspect",
            data={"token": token},
            auth=("portal", idp.secret("portal")),
        )
        assert resp.status_code == 200, resp.text[:300]
        assert resp.json() == {"active": False}

    @pytest.mark.parametrize(
        "body",
        [b"grant_type=\xff\xfe", b"grant_type=%FF%FE", b"grant_type=" + b"[" * 1100],
        ids=["raw-invalid-utf8", "encoded-invalid-utf8", "brackets"],
    )
    async def test_odd_forms_are_oauth_errors(self, idp: IdP, body: bytes) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=("contoso-backend", idp.secret("contoso-backend")),
        )
        assert 400 <= resp.status_code < 500, resp.text[:300]
        assert "error" in resp.json()


class TestClientCredentialsHeader:
    @pytest.mark.parametrize("endpoint", ["token", "introspect", "revoke"])
    async def test_non_ascii_basic_credentials_are_an_invalid_client(
        self, idp: IdP, endpoint: str
    ) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/{endpoint}",
            data={"grant_type": "client_credentials", "token": "x"},
            headers={b"Authorization": "Basic é".encode()},
        )
        assert resp.status_code == 401, resp.text[:300]
        assert resp.json()["error"] == "invalid_client"
        assert resp.headers["www-authenticate"].startswith("Basic")

    async def test_ascii_basic_credentials_still_work(self, idp: IdP) -> None:
        resp = await idp.cc("contoso-backend", "directory:read")
        assert resp.status_code == 200, resp.text


class TestUserinfo:
    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    async def test_a_nested_bearer_token_is_an_invalid_token(self, idp: IdP, token: str) -> None:
        resp = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 401, resp.text[:300]
        challenge = resp.headers["www-authenticate"]
        assert challenge.startswith("Bearer realm=") and 'error="invalid_token"' in challenge

    @pytest.mark.parametrize("kind", BOMBS)
    async def test_a_nested_dpop_proof_is_an_invalid_dpop_proof(self, idp: IdP, kind: str) -> None:
        key = DPoPKey()
        url = f"{idp.issuer}/userinfo"
        good = key.proof("GET", url, "some-token").split(".")
        proof = f"{b64url(BOMBS[kind])}.{good[1]}.{good[2]}"
        resp = await idp.http.get(url, headers={"Authorization": "DPoP some-token", "DPoP": proof})
        assert resp.status_code == 401, resp.text[:300]
        assert 'error="invalid_dpop_proof"' in resp.headers["www-authenticate"]

    async def test_a_real_token_still_reads_userinfo(self, idp: IdP) -> None:
        tokens = await idp.person_tokens("noah", "openid profile")
        resp = await idp.http.get(
            f"{idp.issuer}/userinfo",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["preferred_username"] == "noah"


class TestBrowserPages:
    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    async def test_logout_with_a_nested_id_token_hint_is_a_page(self, idp: IdP, token: str) -> None:
        resp = await idp.http.get(
            f"{idp.issuer}/logout", params={"id_token_hint": token}, headers=BROWSER
        )
        assert resp.status_code < 500, resp.text[:300]
        assert resp.headers["content-type"].startswith("text/html")

    async def test_an_unknown_page_is_an_html_page(self, idp: IdP) -> None:
        resp = await idp.http.get(f"{idp.url}/no/such/page", headers=BROWSER)
        assert resp.status_code == 404
        assert resp.headers["content-type"].startswith("text/html")
        assert "<h1>Not Found</h1>" in resp.text
        assert "default-src 'none'" in resp.headers["content-security-policy"]

    async def test_an_unknown_ecosystem_login_page_is_an_html_page(self, idp: IdP) -> None:
        resp = await idp.http.get(f"{idp.url}/eco/nowhere/login", headers=BROWSER)
        assert resp.status_code == 404
        assert resp.headers["content-type"].startswith("text/html")


PAGE_FORMS = ["/login", "/authorize", "/signup", "/logout"]
ODD_FORMS = {
    "raw-invalid-utf8": b"username=\xff\xfe&password=\xc3",
    "encoded-invalid-utf8": b"username=%FF%FE&csrf_token=%C3",
    "brackets": b"username=" + b"[" * 1100,
    "json-bomb": BOMBS["objects"].encode(),
    "repeated": b"&".join([b"username=a"] * 500),
}


class TestPageForms:
    @pytest.mark.parametrize("page", PAGE_FORMS)
    @pytest.mark.parametrize("body", ODD_FORMS.values(), ids=ODD_FORMS.keys())
    async def test_odd_forms_never_fail_the_server(self, idp: IdP, page: str, body: bytes) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}{page}",
            content=body,
            headers={**BROWSER, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert resp.status_code < 500, resp.text[:300]
        assert resp.headers["content-type"].startswith("text/html")


class TestApiBodies:
    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_body_without_a_token_is_a_problem(self, idp: IdP, bomb: str) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/admin/people",
            content=object_holding(bomb),
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= resp.status_code < 500
        assert_problem(resp, resp.status_code)

    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_platform_token_is_a_problem(self, idp: IdP, bomb: str) -> None:
        token = compact('{"alg": "ES256", "typ": "at+jwt"}', bomb)
        resp = await idp.http.get(
            f"{idp.url}/admin/ecosystems", headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(resp, 401)

    @pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
    async def test_odd_bodies_are_client_errors(self, idp: IdP, body: bytes) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/admin/people",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= resp.status_code < 500, resp.text[:300]
        assert_problem(resp, resp.status_code)

    async def test_unknown_routes_are_problems_for_api_clients(self, idp: IdP) -> None:
        resp = await idp.http.get(f"{idp.url}/no/such/api")
        doc = assert_problem(resp, 404)
        assert doc["code"] == "not_found"


class TestUnexpectedErrors:
    async def test_an_api_client_gets_a_problem_naming_the_request_id(
        self, idp: IdP, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.ERROR, logger="identity.http.errors"):
            resp = await idp.http.get(f"{idp.url}/boom", headers={"X-Request-Id": "boom-1"})
        doc = assert_problem(resp, 500)
        assert doc["code"] == "internal" and doc["request_id"] == "boom-1"
        assert "boom-1" in doc["detail"] and "secret internals" not in resp.text
        logged = [r for r in caplog.records if getattr(r, "request_id", None) == "boom-1"]
        assert logged and logged[0].exc_info and logged[0].exc_info[0] is Boom

    async def test_a_browser_gets_a_page_naming_the_request_id(self, idp: IdP) -> None:
        resp = await idp.http.get(f"{idp.url}/boom", headers=BROWSER)
        assert resp.status_code == 500
        assert resp.headers["content-type"].startswith("text/html")
        rid = resp.headers["x-request-id"]
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", rid) and rid in resp.text
        assert "secret internals" not in resp.text and "Traceback" not in resp.text


# Last in the module: it locks the loopback address out of signing in.
class TestClientAddress:
    async def test_forwarded_for_from_an_untrusted_peer_is_not_the_address(
        self, idp: IdP, nc: Client
    ) -> None:
        ghost = f"spoof-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(headers={"X-Forwarded-For": "203.0.113.9"}) as browser:
            await _try_login(idp, browser, ghost, "nope-nope-nope")
        failed = await _events(
            nc,
            lambda e: getattr(e.data, "action", None) == "login.failed" and e.data.target == ghost,
        )
        assert failed.data.details["ip"] == "127.0.0.1"

    async def test_a_new_forwarded_address_per_attempt_does_not_escape_the_lockout(
        self, idp: IdP
    ) -> None:
        for i in range(idp.settings.login_max_failures_address):
            spoof = {"X-Forwarded-For": f"198.51.100.{i + 1}"}
            async with httpx.AsyncClient(headers=spoof) as browser:
                resp = await _try_login(idp, browser, f"guess-{i}", "wrong-password-here")
                assert resp.status_code in (401, 429)  # the test above counted one already
        async with httpx.AsyncClient(headers={"X-Forwarded-For": "198.51.100.200"}) as browser:
            blocked = await _try_login(idp, browser, "noah", PASSWORD)
        assert blocked.status_code == 429


class TestTrustedProxiesSetting:
    def test_addresses_and_networks_are_normalised(self) -> None:
        settings = IdentitySettings(trusted_proxies=["10.0.0.7", " 10.1.0.0/16", "fd00::1/64"])
        assert settings.trusted_proxies == ["10.0.0.7", "10.1.0.0/16", "fd00::/64"]
        assert IdentitySettings().trusted_proxies == []

    @pytest.mark.parametrize("entry", ["proxy.example", "10.0.0.0/33", "*"])
    def test_anything_else_is_refused_at_start(self, entry: str) -> None:
        with pytest.raises(ValidationError):
            IdentitySettings(trusted_proxies=[entry])
