"""DPoP benchmark: what checking a proof (RFC 9449) costs, against verifying the access
token it accompanies, measured in the same run.

Per operation, in this process: verifying an RS256 access token (no cache: the baseline),
the edge's full proof check (ES256 and RS256 proofs: signature, htm/htu, iat, ath, key,
replay cache) and a service's re-check (no htu, no replay). Figures are microseconds per
operation and ratios to the baseline, so ``proof_es256_ratio`` = 1.5 means a DPoP request
costs the gateway 1.5 token verifications more than a bearer one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mesh.dpop import ProofChecker, access_token_hash, thumbprint
from mesh.replay import ReplayCache
from mesh.tokens import StaticKeys, TokenVerifier, issuer_for

IDENTITY = "http://identity.bench"
URL = "https://api.bench/v1/ecosystems/bench/echo"


def _issuer() -> tuple[rsa.RSAPrivateKey, TokenVerifier]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid="bench", alg="RS256", use="sig")
    keys = StaticKeys({issuer_for(IDENTITY, "bench"): [jwk]})
    return key, TokenVerifier(keys, IDENTITY, "partnermesh", cache_size=0)


def _token(key: rsa.RSAPrivateKey, jkt: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer_for(IDENTITY, "bench"),
        "sub": "bench",
        "aud": "partnermesh",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "client_id": "bench",
        "scope": "mesh:ping",
        "eco": "bench",
        "cnf": {"jkt": jkt},
    }
    return jwt.encode(claims, key, "RS256", headers={"typ": "at+jwt", "kid": "bench"})


def _proofs(private: Any, alg: str, token: str, n: int) -> tuple[list[str], str]:
    algo: Any = jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.RSAAlgorithm
    public = algo.to_jwk(private.public_key(), as_dict=True)
    ath, now = access_token_hash(token), int(time.time())
    header = {"typ": "dpop+jwt", "jwk": public}
    proofs = [
        jwt.encode(
            {"jti": uuid.uuid4().hex, "htm": "GET", "htu": URL, "iat": now, "ath": ath},
            private,
            alg,
            headers=header,
        )
        for _ in range(n)
    ]
    return proofs, thumbprint(public)


async def _per_op(n: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """Microseconds per call, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(n):
            await op(i)
        best = min(best, (time.perf_counter() - started) / n)
    return round(best * 1e6, 1)


async def run(quick: bool) -> dict[str, Any]:
    n = 300 if quick else 2000
    issuer_key, verifier = _issuer()
    es_key = ec.generate_private_key(ec.SECP256R1())
    rs_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    figures: dict[str, Any] = {"operations": n}
    token = _token(issuer_key, "unused")

    async def verify_token(_: int) -> None:
        await verifier.verify(token)

    baseline = await _per_op(n, verify_token)
    figures["token_verify_us"] = baseline
    for alg, private in (("ES256", es_key), ("RS256", rs_key)):
        figures.update(await _measure(alg, private, token, baseline, n))
    return figures


async def _measure(alg: str, private: Any, token: str, baseline: float, n: int) -> dict[str, Any]:
    """Edge check (a fresh proof each call) and service re-check of ``alg`` proofs."""
    proofs, jkt = _proofs(private, alg, token, 3 * n)
    fresh = iter(proofs)
    edge = ProofChecker(replay=ReplayCache(10 * n))
    service = ProofChecker()

    async def at_edge(_: int) -> None:
        edge.verify(next(fresh), "GET", URL, token, jkt)

    async def at_service(i: int) -> None:
        service.verify(proofs[i], None, None, token, jkt, check_replay=False)

    edge_us = await _per_op(n, at_edge)
    service_us = await _per_op(n, at_service)
    name = alg.lower()
    return {
        f"proof_{name}_edge_us": edge_us,
        f"proof_{name}_service_us": service_us,
        f"proof_{name}_ratio": round(edge_us / baseline, 2),
        f"proof_{name}_service_ratio": round(service_us / baseline, 2),
    }
