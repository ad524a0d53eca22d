"""Zero trust for DPoP-bound tokens: a service re-checks the proof the gateway forwarded.

The service checks signature, key (``cnf.jkt``), ``ath`` and the ``iat`` window; it leaves
``htm``/``htu`` and ``jti`` replay to the edge (see ``mesh.dpop``), so one proof may reach
several services (a mashup) but never with another token or another key.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.errors import ErrorCode
from contracts.v1 import system
from mesh.client import request_raw
from mesh.dpop import (
    DPoPError,
    NonceSource,
    ProofChecker,
    forwarded_headers,
    normalize_htu,
)
from mesh.errors import MeshError
from mesh.replay import ReplayCache
from mesh.runtime import ServiceRuntime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support.dpop import DPoPKey
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory

EDGE_URL = "https://gateway.example/v1/ecosystems/acme/echo"
PAYLOAD = json.dumps({"eco": "acme", "message": "pop"}).encode()


@pytest.fixture
async def profile(
    nats_url: str, database_url: str, test_keys: TestKeys
) -> AsyncIterator[ServiceRuntime]:
    """A real profile service on the test NATS."""
    async with run_service(
        "profile",
        ProfileSettings,
        models.metadata,
        handlers.register,
        nats_url=nats_url,
        database_url=database_url,
        verifier=test_keys.verifier(),
    ) as rt:
        yield rt


async def echo(nc: Client, token: str, headers: dict[str, str]) -> dict[str, Any]:
    data = await request_raw(nc, system.ECHO.subject, PAYLOAD, token, 5.0, headers)
    reply: dict[str, Any] = json.loads(data)
    return reply


class TestServiceReChecks:
    async def test_forwarded_proof_is_accepted(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        key = DPoPKey()
        token = tokens.mint(sub="dora", cnf={"jkt": key.jkt})
        reply = await echo(nc, token, forwarded_headers(token, key.proof("GET", EDGE_URL, token)))
        assert reply["sub"] == "dora"

    async def test_one_proof_serves_several_services_of_a_mashup(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        key = DPoPKey()
        token = tokens.mint(cnf={"jkt": key.jkt})
        headers = forwarded_headers(token, key.proof("POST", EDGE_URL, token))
        for _ in range(2):
            assert (await echo(nc, token, headers))["message"] == "pop"

    @pytest.mark.parametrize(
        "case",
        [
            "bearer",
            "no_proof",
            "other_key",
            "wrong_ath",
            "stale",
            "bad_signature",
            "unbound_dpop",
            "mtls_bound",
        ],
    )
    async def test_refused(
        self, nc: Client, profile: ServiceRuntime, tokens: TokenFactory, case: str
    ) -> None:
        key = DPoPKey()
        token = tokens.mint(cnf={"jkt": key.jkt})
        proof = key.proof("GET", EDGE_URL, token)
        headers = {
            "bearer": {"DPoP": proof},  # the token goes as Bearer (request_raw's default)
            "no_proof": {"Authorization": f"DPoP {token}"},
            "other_key": forwarded_headers(token, DPoPKey().proof("GET", EDGE_URL, token)),
            "wrong_ath": forwarded_headers(token, key.proof("GET", EDGE_URL, "other-token")),
            "stale": forwarded_headers(
                token, key.proof("GET", EDGE_URL, token, iat=time.time() - 3600)
            ),
            "bad_signature": forwarded_headers(token, proof[:-4] + "AAAA"),
            "unbound_dpop": forwarded_headers(
                unbound := tokens.mint(), key.proof("GET", EDGE_URL, unbound)
            ),
            "mtls_bound": {},  # a cnf this mesh cannot check, sent as Bearer
        }[case]
        sent = {"unbound_dpop": unbound, "mtls_bound": tokens.mint(cnf={"x5t#S256": "abc"})}
        with pytest.raises(MeshError) as err:
            await echo(nc, sent.get(case, token), headers)
        assert err.value.code is ErrorCode.UNAUTHENTICATED


class TestProofChecker:
    def test_replay_cache_stays_bounded_and_refuses_what_it_forgot(self) -> None:
        cache = ReplayCache(size=3)
        now = time.time()
        for i in range(5):
            assert not cache.seen(f"k{i}", int(now) - 10 + i, now + 60, now)
        assert len(cache) == 3
        # k0 and k1 were forgotten: proofs as old as them count as replayed
        assert cache.seen("k0", int(now) - 10, now + 60, now)
        assert cache.seen("k4", int(now) - 6, now + 60, now)
        assert not cache.seen("fresh", int(now), now + 60, now)

    def test_replay_entries_expire_with_the_window(self) -> None:
        cache = ReplayCache()
        now = time.time()
        cache.seen("k", int(now), now + 1, now)
        assert len(cache) == 1
        assert not cache.seen("other", int(now), now + 62, now + 2)
        assert len(cache) == 1

    def test_nonces_are_valid_for_their_slot_and_the_next(self) -> None:
        nonces = NonceSource("secret", period=100)
        nonce = nonces.current(1000.0)
        assert nonces.valid(nonce, 1050.0) and nonces.valid(nonce, 1150.0)
        assert not nonces.valid(nonce, 1250.0)
        assert not NonceSource("other secret", period=100).valid(nonce, 1000.0)

    def test_htu_normalisation(self) -> None:
        assert normalize_htu("HTTPS://Api.Example:443/a%20b?q=1#f") == "https://api.example/a b"
        assert normalize_htu("http://h:8080") == "http://h:8080/"
        assert normalize_htu("http://h/a") != normalize_htu("http://h/A")

    def test_verify_without_url_checks_still_checks_the_key(self) -> None:
        key = DPoPKey()
        proof = key.proof("GET", EDGE_URL, "tok")
        checker = ProofChecker()
        assert checker.verify(proof, None, None, "tok", key.jkt).jkt == key.jkt
        with pytest.raises(DPoPError) as err:
            checker.verify(proof, None, None, "tok", DPoPKey().jkt)
        assert err.value.error == "invalid_token"

    @pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
    def test_weak_rsa_keys_are_refused(self) -> None:
        import jwt as pyjwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        jwk = pyjwt.algorithms.RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True)
        payload = {"jti": "j", "htm": "GET", "htu": EDGE_URL, "iat": int(time.time())}
        proof = pyjwt.encode(payload, weak, "RS256", headers={"typ": "dpop+jwt", "jwk": jwk})
        with pytest.raises(DPoPError) as err:
            ProofChecker().verify(proof, "GET", EDGE_URL)
        assert "2048" in err.value.description

    def test_private_members_of_any_key_type_are_refused(self) -> None:
        key = DPoPKey("RS256")
        proof = key.proof("GET", EDGE_URL, header={"jwk": {**key.public_jwk, "p": "AQAB"}})
        with pytest.raises(DPoPError) as err:
            ProofChecker().verify(proof, "GET", EDGE_URL)
        assert "private" in err.value.description

    def test_the_bound_key_is_checked_even_without_a_token(self) -> None:
        key = DPoPKey()
        proof = key.proof("GET", EDGE_URL)
        with pytest.raises(DPoPError) as err:
            ProofChecker().verify(proof, "GET", EDGE_URL, jkt=DPoPKey().jkt)
        assert err.value.error == "invalid_token"

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda p: p.replace(".", ".!", 1),  # not base64url
            lambda p: p + ".extra",  # four segments
            lambda p: "W10" + p[p.index(".") :],  # header is a JSON array
        ],
    )
    def test_malformed_proofs_are_invalid(self, mangle: Callable[[str], str]) -> None:
        proof = mangle(DPoPKey().proof("GET", EDGE_URL))
        with pytest.raises(DPoPError) as err:
            ProofChecker().verify(proof, "GET", EDGE_URL)
        assert err.value.error == "invalid_dpop_proof"

    def test_critical_header_extensions_are_refused(self) -> None:
        proof = DPoPKey().proof("GET", EDGE_URL, header={"crit": ["exp"], "exp": 1})
        with pytest.raises(DPoPError) as err:
            ProofChecker().verify(proof, "GET", EDGE_URL)
        assert "critical" in err.value.description
