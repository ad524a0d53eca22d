"""DPoP-bound tokens at the edge (RFC 9449 §7): proofs checked per request, every denial."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer
from tests.support.dpop import DPoPKey, hs256_proof, tampered, unsigned_proof
from tests.support.tokens import TokenFactory

ECHO = "/v1/ecosystems/acme/echo"
MASHUP = "/v1/ecosystems/acme/mashup"


def url_of(gateway: httpx.AsyncClient, path: str) -> str:
    return f"{gateway.base_url}".rstrip("/") + path


@pytest.fixture
def key() -> DPoPKey:
    """The client's DPoP key."""
    return DPoPKey()


@pytest.fixture
def bound(tokens: TokenFactory, key: DPoPKey) -> str:
    """An access token bound to ``key`` (cnf.jkt)."""
    return tokens.mint(sub="dora", cnf={"jkt": key.jkt})


def assert_dpop_401(resp: httpx.Response, error: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "unauthenticated"
    challenge = resp.headers["www-authenticate"]
    assert challenge.startswith("DPoP ") and f'error="{error}"' in challenge
    assert 'algs="ES256 RS256 PS256 EdDSA"' in challenge


class TestBoundTokens:
    async def test_dpop_scheme_with_a_valid_proof_reaches_the_service(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, key: DPoPKey, bound: str
    ) -> None:
        headers = key.headers("GET", url_of(gateway, ECHO), bound)
        r = await gateway.get(ECHO, params={"message": "pop"}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["message"] == "pop" and r.json()["sub"] == "dora"

    async def test_htu_ignores_query_and_fragment(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, key: DPoPKey, bound: str
    ) -> None:
        headers = key.headers("GET", url_of(gateway, ECHO) + "?message=x#top", bound)
        r = await gateway.get(ECHO, params={"message": "other"}, headers=headers)
        assert r.status_code == 200, r.text

    async def test_plain_bearer_tokens_keep_working(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        r = await gateway.get(ECHO, headers=bearer(tokens.mint()))
        assert r.status_code == 200, r.text

    async def test_bound_token_sent_as_bearer_is_refused(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, key: DPoPKey, bound: str
    ) -> None:
        headers = {**bearer(bound), "DPoP": key.proof("GET", url_of(gateway, ECHO), bound)}
        assert_dpop_401(await gateway.get(ECHO, headers=headers), "invalid_token")

    async def test_bound_token_without_proof_is_refused(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, bound: str
    ) -> None:
        r = await gateway.get(ECHO, headers={"Authorization": f"DPoP {bound}"})
        assert_dpop_401(r, "invalid_dpop_proof")

    async def test_dpop_scheme_with_an_unbound_token_is_refused(
        self,
        gateway: httpx.AsyncClient,
        profile: ServiceRuntime,
        tokens: TokenFactory,
        key: DPoPKey,
    ) -> None:
        token = tokens.mint()
        r = await gateway.get(ECHO, headers=key.headers("GET", url_of(gateway, ECHO), token))
        assert_dpop_401(r, "invalid_token")

    async def test_token_bound_by_another_method_is_not_a_bearer_token(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(cnf={"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"})
        assert_dpop_401(await gateway.get(ECHO, headers=bearer(token)), "invalid_token")

    async def test_proof_by_another_key_is_refused(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, bound: str
    ) -> None:
        headers = DPoPKey().headers("GET", url_of(gateway, ECHO), bound)
        assert_dpop_401(await gateway.get(ECHO, headers=headers), "invalid_token")

    async def test_replayed_proof_is_refused(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, key: DPoPKey, bound: str
    ) -> None:
        headers = key.headers("GET", url_of(gateway, ECHO), bound)
        assert (await gateway.get(ECHO, headers=headers)).status_code == 200
        assert_dpop_401(await gateway.get(ECHO, headers=headers), "invalid_dpop_proof")


def bad_proof(kind: str, key: DPoPKey, url: str, token: str) -> str:
    proofs: dict[str, Callable[[], str]] = {
        "bad_signature": lambda: tampered(key.proof("GET", url, token)),
        "wrong_htm": lambda: key.proof("POST", url, token),
        "wrong_htu": lambda: key.proof("GET", url.replace("/echo", "/directory"), token),
        "stale_iat": lambda: key.proof("GET", url, token, iat=time.time() - 3600),
        "future_iat": lambda: key.proof("GET", url, token, iat=time.time() + 3600),
        "wrong_ath": lambda: key.proof("GET", url, "another-token"),
        "no_ath": lambda: key.proof("GET", url),
        "private_key_in_jwk": lambda: key.proof("GET", url, token, header={"jwk": key.private_jwk}),
        "alg_none": lambda: unsigned_proof("GET", url, key.public_jwk),
        "hs256": lambda: hs256_proof("GET", url),
        "wrong_typ": lambda: key.proof("GET", url, token, header={"typ": "JWT"}),
        "garbage": lambda: "garbage",
    }
    return proofs[kind]()


BAD = [
    "bad_signature",
    "wrong_htm",
    "wrong_htu",
    "stale_iat",
    "future_iat",
    "wrong_ath",
    "no_ath",
    "private_key_in_jwk",
    "alg_none",
    "hs256",
    "wrong_typ",
    "garbage",
]


class TestBadProofs:
    @pytest.mark.parametrize("kind", BAD)
    async def test_is_401_invalid_dpop_proof(
        self,
        gateway: httpx.AsyncClient,
        profile: ServiceRuntime,
        key: DPoPKey,
        bound: str,
        kind: str,
    ) -> None:
        proof = bad_proof(kind, key, url_of(gateway, ECHO), bound)
        r = await gateway.get(ECHO, headers={"Authorization": f"DPoP {bound}", "DPoP": proof})
        assert_dpop_401(r, "invalid_dpop_proof")

    async def test_two_proof_headers_are_refused(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, key: DPoPKey, bound: str
    ) -> None:
        url = url_of(gateway, ECHO)
        headers = [
            ("Authorization", f"DPoP {bound}"),
            ("DPoP", key.proof("GET", url, bound)),
            ("DPoP", key.proof("GET", url, bound)),
        ]
        assert_dpop_401(await gateway.get(ECHO, headers=headers), "invalid_dpop_proof")


class TestExternalUrl:
    async def test_htu_is_the_public_url_behind_a_proxy(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        key: DPoPKey,
        bound: str,
    ) -> None:
        public = "https://api.partners.example/mesh"
        async with start_gateway(public_url=public) as gw:
            ok = await gw.get(ECHO, headers=key.headers("GET", public + ECHO, bound))
            assert ok.status_code == 200, ok.text
            local = await gw.get(ECHO, headers=key.headers("GET", url_of(gw, ECHO), bound))
            assert_dpop_401(local, "invalid_dpop_proof")


class TestSharedReplayCache:
    async def test_a_proof_used_at_one_replica_is_refused_at_another(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        key: DPoPKey,
        bound: str,
        redis_url: str,
    ) -> None:
        public = "https://api.partners.example"
        shared = {
            "public_url": public,
            "redis_url": redis_url,
            "rate_limit_key_prefix": f"pm:test:{uuid.uuid4().hex}:",
        }
        headers = key.headers("GET", public + ECHO, bound)
        async with start_gateway(**shared) as one, start_gateway(**shared) as two:
            assert (await one.get(ECHO, headers=headers)).status_code == 200
            assert_dpop_401(await two.get(ECHO, headers=headers), "invalid_dpop_proof")
            fresh = key.headers("GET", public + ECHO, bound)
            assert (await two.get(ECHO, headers=fresh)).status_code == 200


class TestNonces:
    async def test_round_trip(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        key: DPoPKey,
        bound: str,
    ) -> None:
        async with start_gateway(dpop_nonce=True) as gw:
            url = url_of(gw, ECHO)
            first = await gw.get(ECHO, headers=key.headers("GET", url, bound))
            assert_dpop_401(first, "use_dpop_nonce")
            nonce = first.headers["DPoP-Nonce"]
            second = await gw.get(ECHO, headers=key.headers("GET", url, bound, nonce=nonce))
            assert second.status_code == 200, second.text


class TestMashup:
    async def test_sub_requests_inherit_the_proven_key(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, key: DPoPKey, bound: str
    ) -> None:
        batch = {
            "requests": [
                {"id": "a", "path": ECHO, "query": {"message": "one"}},
                {"id": "b", "path": ECHO, "query": {"message": "two"}},
            ]
        }
        headers = key.headers("POST", url_of(gateway, MASHUP), bound)
        r = await gateway.post(MASHUP, json=batch, headers=headers)
        assert r.status_code == 200, r.text
        results = {i["id"]: i for i in r.json()["results"]}
        assert results["a"]["status"] == 200 and results["a"]["body"]["sub"] == "dora"
        assert results["b"]["status"] == 200 and results["b"]["body"]["message"] == "two"

    async def test_mashup_proof_must_name_the_mashup_request(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, key: DPoPKey, bound: str
    ) -> None:
        headers = key.headers("GET", url_of(gateway, ECHO), bound)
        r = await gateway.post(
            MASHUP, json={"requests": [{"id": "a", "path": ECHO}]}, headers=headers
        )
        assert_dpop_401(r, "invalid_dpop_proof")
