"""DPoP (RFC 9449) at the identity provider: the proof policy, sender-constrained tokens.

The token endpoint accepts a ``DPoP`` proof with every grant (checked by
:class:`mesh.dpop.ProofChecker` before the grant runs, ``htu`` = ``{iss}/token``).
With a valid proof the access token carries ``cnf.jkt`` (the RFC 7638 thumbprint of
the proof's key) and ``token_type`` is ``DPoP``; a public client's refresh token is bound
to the same key and only a proof by that key refreshes it (confidential clients
authenticate instead, RFC 9449 §5). A client registered with
``dpop_bound_access_tokens`` must send a proof with every token request; an
authorization request's ``dpop_jkt`` binds the code to a key (§10). Those bindings are
applied inside the grants (:mod:`identity.oauth.dpop`); the error responses are the
HTTP edge's (:mod:`identity.http.oidc`).

Errors are the RFC's: ``invalid_dpop_proof`` (400) for a bad proof; ``use_dpop_nonce``
(400, with a ``DPoP-Nonce`` header) when the ecosystem demands server nonces; both as
OAuth error responses. Successful token responses of such an ecosystem carry the next
nonce. Userinfo takes ``Authorization: DPoP <token>`` with a proof carrying ``ath``.

Replay detection keeps proof ``jti`` values in this process (bounded, see
:class:`mesh.replay.ReplayCache`); with ``PM_IDENTITY_REDIS_URL`` every replica shares
them through Redis (:class:`mesh.replay.SharedReplay`), so a proof used at one replica
is refused at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from identity.settings import IdentitySettings
from mesh import dpop
from mesh.dpop import DPoPError, NonceSource, Proof, ProofChecker
from mesh.replay import ReplayCache, SharedReplay


@dataclass
class IdentityDPoP:
    """The proof policy of this provider: window, replay cache, nonce demands."""

    checker: ProofChecker
    nonces: NonceSource
    nonce_ecosystems: frozenset[str]
    shared: SharedReplay | None = None  # jti replay across replicas (Redis)

    def demands_nonce(self, eco: str) -> bool:
        return "*" in self.nonce_ecosystems or eco in self.nonce_ecosystems

    async def token_proof(self, values: Sequence[str], issuer: str, eco: str) -> Proof | None:
        """The verified proof of a token request (None without one); raises DPoPError."""
        raw = self.checker.single(values)
        if raw is None:
            return None
        proof = self.checker.verify(
            raw, "POST", f"{issuer}/token", require_nonce=self.demands_nonce(eco)
        )
        return await self._not_replayed(proof)

    async def _not_replayed(self, proof: Proof) -> Proof:
        """``proof``, unless another replica has seen its ``jti`` (with a shared cache;
        without one the checker has looked in this process's own)."""
        if self.shared is not None:
            await self.checker.not_replayed_anywhere(proof, self.shared)
        return proof

    async def resource_credentials(
        self, authorization: str | None, values: Sequence[str], method: str, url: str
    ) -> tuple[str | None, Proof | None]:
        """``(token, proof)`` of a request to a protected endpoint of the provider.

        A ``DPoP`` scheme needs a valid proof with ``ath``; the key is compared with the
        token's ``cnf.jkt`` by :func:`check_binding` once the token is decoded.
        """
        cred = dpop.credentials(authorization)
        if cred is None:
            return None, None
        scheme, token = cred
        if scheme != dpop.SCHEME:
            return token, None
        raw = self.checker.single(values)
        if raw is None:
            raise DPoPError(dpop.INVALID_PROOF, "the DPoP scheme needs a DPoP proof header")
        proof = self.checker.verify(raw, method, url, access_token=token)
        return token, await self._not_replayed(proof)

    def nonce_headers(self, eco: str) -> dict[str, str]:
        """The next nonce, on every token response of an ecosystem that demands them."""
        return {dpop.NONCE_HEADER: self.nonces.current()} if self.demands_nonce(eco) else {}


def build(settings: IdentitySettings, redis_client: Any = None) -> IdentityDPoP:
    """The provider's proof policy; ``redis_client`` (optional) shares replay detection."""
    nonces = NonceSource(settings.key_encryption_secret, settings.dpop_nonce_period_s)
    local = ReplayCache(settings.dpop_replay_cache_size)
    shared = (
        SharedReplay(redis_client, settings.redis_key_prefix, local)
        if redis_client is not None
        else None
    )
    checker = ProofChecker(
        max_age=settings.dpop_max_age_s,
        leeway=settings.dpop_leeway_s,
        replay=None if shared else local,
        nonces=nonces,
    )
    return IdentityDPoP(checker, nonces, frozenset(settings.dpop_nonce_ecosystems), shared)


def check_binding(claims: dict[str, Any], proof: Proof | None) -> None:
    """A DPoP-bound token needs a proof by its key; an unbound one is used as Bearer."""
    jkt = dpop.bound_jkt(claims)
    if jkt is None:
        if proof is not None:
            raise DPoPError(dpop.INVALID_TOKEN, "the token is not DPoP-bound; use Bearer")
        return
    if proof is None:
        raise DPoPError(dpop.INVALID_TOKEN, "a DPoP-bound token needs the DPoP scheme")
    dpop.check_key(proof, jkt)


def valid_jkt(value: str | None) -> bool:
    """A ``dpop_jkt`` parameter: a base64url SHA-256 thumbprint (43 characters)."""
    return value is None or (len(value) == 43 and all(c.isalnum() or c in "-_" for c in value))


def token_type(claims: dict[str, Any]) -> str:
    """``token_type`` of an issued or introspected access token."""
    return "DPoP" if claims.get("cnf") else "Bearer"
