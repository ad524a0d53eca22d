"""Pushed authorization requests (RFC 9126): stored, single use, short-lived, one client's.

A client pushes its authorization request's parameters (``POST {iss}/par``) and gets a
``request_uri`` (``urn:ietf:params:oauth:request_uri:<random>``) to send the browser to
``{iss}/authorize`` with. The parameters live in identity's database, so every replica
resolves the URI; only its hash is stored. The URI must be used within
:data:`LIFETIME_S` of the push, by the client that pushed it. It is spent by the
authorization response (a code or an error sent back to the client); while the person
signs in or consents, it stays usable for :data:`INTERACTION_S` more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from identity.domain.crypto import digest, new_secret
from identity.store import repository as repo
from identity.store.models import PushedRequest
from identity.store.transaction import Tx

URN_PREFIX = "urn:ietf:params:oauth:request_uri:"
LIFETIME_S = 60  # from the push to the first use at the authorization endpoint
INTERACTION_S = 600  # from a sign-in or consent page to the authorization response
# What a pushed request may not carry: client authentication, and request_uri itself.
NOT_PUSHED = frozenset(
    {"client_secret", "client_assertion", "client_assertion_type", "request_uri"}
)


class PushedRequestError(ValueError):
    """A ``request_uri`` that cannot be used (``invalid_request_uri``)."""


@dataclass(frozen=True)
class Resolved:
    """A usable pushed request: its row (to spend or extend) and its parameters."""

    row: PushedRequest
    params: list[tuple[str, str]]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def push(tx: Tx, eco: str, client_id: str, params: list[tuple[str, str]]) -> tuple[str, int]:
    """Store the request; returns its ``request_uri`` and lifetime in seconds."""
    now = _now()
    repo.drop_pushed_before(tx.s, now - timedelta(seconds=INTERACTION_S))
    uri = URN_PREFIX + new_secret()
    kept = [[k, v] for k, v in params if k not in NOT_PUSHED]
    repo.add(
        tx.s,
        PushedRequest(
            uri_hash=digest(uri),
            eco=eco,
            client_id=client_id,
            params=kept,
            expires_at=now + timedelta(seconds=LIFETIME_S),
            used=False,
        ),
    )
    return uri, LIFETIME_S


def resolve(tx: Tx, eco: str, uri: str, client_id: str | None) -> Resolved:
    """The pushed request behind ``uri``, for ``client_id`` (the authorization request's
    own ``client_id``, required by RFC 9126 §4). Raises :class:`PushedRequestError`."""
    if not uri.startswith(URN_PREFIX):
        raise PushedRequestError("request_uri must be one this server issued (RFC 9126)")
    row = repo.get_pushed(tx.s, digest(uri))
    if row is None or row.eco != eco:
        raise PushedRequestError("unknown request_uri")
    if row.used:
        raise PushedRequestError("this request_uri has been used already")
    if _aware(row.expires_at) <= _now():
        raise PushedRequestError("this request_uri has expired")
    if not client_id or client_id != row.client_id:
        raise PushedRequestError("this request_uri was pushed by another client")
    return Resolved(row, [(str(k), str(v)) for k, v in row.params])


def spend(tx: Tx, resolved: Resolved) -> None:
    """The authorization response is given: the URI cannot be used again."""
    resolved.row.used = True
    tx.s.flush()


def hold(tx: Tx, resolved: Resolved) -> None:
    """The person is signing in or consenting: keep the URI usable for that long."""
    until = _now() + timedelta(seconds=INTERACTION_S)
    if _aware(resolved.row.expires_at) < until:
        resolved.row.expires_at = until
        tx.s.flush()
