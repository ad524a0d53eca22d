"""DPoP (RFC 9449) inside the grant machinery: the current call holds the request's proof
(checked by :class:`identity.domain.dpop.IdentityDPoP` before the grant runs), and these
bind the tokens being issued to its key or refuse what is not bound to it."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError, OAuth2Error

from identity.oauth.adapter import ClientView, current
from mesh import dpop
from mesh.dpop import Proof


class InvalidDPoPProofError(OAuth2Error):  # type: ignore[misc]  # authlib ships no types
    error = dpop.INVALID_PROOF
    status_code = 400


def current_proof() -> Proof | None:
    proof: Proof | None = current().extras.get("dpop")
    return proof


def access_binding(client: ClientView) -> dict[str, str] | None:
    """``cnf`` for the access token being issued; refuses a dpop-bound client without proof."""
    proof = current_proof()
    if proof is not None:
        return {"jkt": proof.jkt}
    if client.row.dpop_bound_access_tokens:
        raise InvalidDPoPProofError("this client must send a DPoP proof with token requests")
    return None


def refresh_binding(client: ClientView) -> str | None:
    """The key a new refresh token is bound to: the proof's, for public clients."""
    proof = current_proof()
    return proof.jkt if proof is not None and client.is_public else None


def check_refresh_binding(jkt: str | None) -> None:
    """A bound refresh token is refreshed only with a proof by its key."""
    if jkt is None:
        return
    proof = current_proof()
    if proof is None:
        raise InvalidGrantError("this refresh token is DPoP-bound; send a proof by its key")
    if proof.jkt != jkt:
        raise InvalidGrantError(
            "the DPoP proof's key is not the key this refresh token is bound to"
        )


def check_code_binding(dpop_jkt: str | None) -> None:
    """RFC 9449 §10: a code requested with ``dpop_jkt`` is redeemed only by that key."""
    if dpop_jkt is None:
        return
    proof = current_proof()
    if proof is None or proof.jkt != dpop_jkt:
        raise InvalidGrantError("the code is bound to a DPoP key (dpop_jkt); prove that key")
