"""The lean path of the token endpoint for the common client-credentials request.

A back-end asking for its own token (``POST {iss}/token`` with HTTP Basic client
authentication and ``grant_type=client_credentials[&scope=…]``) is the hottest request of
the provider. When everything that request needs is already cached in this process (the
ecosystem, the client and the signing key, see :class:`identity.store.cache.TtlCache` and
:class:`identity.domain.keys.KeyRing`) this ASGI middleware answers it directly: no FastAPI
routing, no form parser, no authlib grant objects, no database session. The grant's
checks and what the token holds are the full path's own (:mod:`identity.oauth.client_credentials`:
``decide``, remembered per cached row, see :mod:`identity.lean.templates`, and
``secret_accepted``, per request); the token is the one the
full path mints (same claims, response body and headers) and its ``token.issued`` audit
event is group-committed to the outbox before the response leaves, as on the full path.

The lean path only ever *issues*: any request it is not certain about — another grant or
authentication method, extra or repeated parameters, an odd encoding or content type, a
``DPoP`` proof, a cache miss, an unknown client, a wrong secret, anything the grant
refuses — is handed, body intact, to the full path (FastAPI + authlib), which decides
and produces every error response. ``PM_IDENTITY_LEAN=off`` leaves this middleware out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NamedTuple

from starlette.types import ASGIApp, Receive, Scope, Send

from identity.domain.keys import Signer, access_token_alg
from identity.domain.tokens import sign_payload
from identity.lean.ids import uuid4_hex
from identity.lean.request import (
    credentials,
    eco_of,
    form_of,
    headers_of,
    read_body,
    replay,
)
from identity.lean.templates import Templates, json_text
from identity.oauth.client_credentials import GRANT, secret_accepted
from identity.store import repository as repo
from mesh import metrics
from mesh.outbox import OutboxRow
from mesh.problems import PROBLEM_JSON, Problem

log = logging.getLogger(__name__)

HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]
AHEAD = 0.8  # a busy client's cached rows and key are re-read at 80 % of their lifetime
CHECK_EVERY = 0.1  # seconds between two looks at one client's cache ages (not per token)
ROUTE = "/eco/{eco}/token"  # the label of the full path's route in the HTTP metrics


_uuid4_hex = uuid4_hex  # a jti: random, version 4 (from the pool of identity.lean.ids)


def response_body(token: dict[str, Any]) -> bytes:
    """``json.dumps(token).encode()`` of the token response, written out: the token and
    token type are plain ASCII (base64url, a word) and the scope goes through json."""
    return (
        f'{{"access_token": "{token["access_token"]}", "token_type": "Bearer", '
        f'"expires_in": {int(token["expires_in"])}, "scope": "{json_text(token["scope"])}"}}'
    ).encode()


class Issued(NamedTuple):
    """A token decided on: its claims, the key that signs them and its audit row."""

    signer: Signer
    claims: dict[str, Any]
    payload: bytes  # the claims as JSON, as json.dumps writes them compactly
    row: OutboxRow  # its token.issued audit event
    client_id: str

    def sign(self) -> str:
        return sign_payload(self.signer, self.payload)

    def body(self, access_token: str) -> bytes:
        """The token response around the signed token (:func:`response_body`'s bytes)."""
        claims = self.claims
        return (
            f'{{"access_token": "{access_token}", "token_type": "Bearer", '
            f'"expires_in": {claims["exp"] - claims["iat"]}, '
            f'"scope": "{json_text(claims["scope"])}"}}'
        ).encode()


def issue(rt: Any, templates: Templates, eco: str, auth: str, body: bytes) -> Issued | None:
    """The token response and its audit event's outbox row, or None to let the full path
    decide."""
    form = form_of(body)
    if form is None or form.get("grant_type") != GRANT:
        return None
    requested = form.get("scope")  # known scopes, written plainly (see request.form_of)
    creds = credentials(auth)
    if creds is None:
        return None
    client_id, secret_digest = creds
    eco_row = rt.rows.get((eco,))
    row = rt.rows.get((eco, client_id)) if eco_row is not None else None
    if row is None:
        return None  # unknown here (a cache miss): the full path reads the database
    entry = templates.entry(rt, eco_row, row)
    template = entry.template
    if template is None or not secret_accepted(row, secret_digest):
        return None
    signer = rt.keys.cached_signer(eco, entry.alg)
    if signer is None:
        return None
    decided = templates.decision(eco_row, row, requested)
    if decided is None:
        return None
    granted = decided.scope
    ttl = entry.ttl
    now = int(time.time())
    jti = _uuid4_hex()
    claims = {**template.claims, "exp": now + ttl, "iat": now, "jti": jti, "scope": granted}
    payload = template.payload(now + ttl, now, jti, granted)
    audit = templates.events.row(eco, client_id, claims, granted)
    return Issued(signer, claims, payload, audit, client_id)


class TokenFastPath:
    """ASGI wrapper in front of the whole app: answers what :func:`issue` can answer
    (recording the same HTTP metrics as the full path), passes everything else on."""

    def __init__(self, app: ASGIApp, owner: Any) -> None:
        self.app = app
        self.owner = owner  # the FastAPI app, whose state holds the runtime
        self.templates = Templates()
        self.issued = 0  # tokens answered here (the rest went to the full path)
        self.counted = metrics.http_requests.labels("identity", ROUTE, "200", "")
        self._refreshing: set[tuple[str, str]] = set()
        self._next_check: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.timed = metrics.http_latency.labels("identity", ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        eco = eco_of(scope)
        rt = self.runtime() if eco else None
        auth = headers_of(scope["headers"]) if rt is not None else None
        if eco is None or rt is None or auth is None:
            await self.app(scope, receive, send)
            return
        body, message = await read_body(receive)
        lean = message is None and rt.group.running  # not yet, or stopping: the full path
        result = issue(rt, self.templates, eco, auth, body) if lean else None
        access_token = signed(result)
        if result is None or access_token is None:
            await self.app(scope, replay(body, message, receive), send)
            return
        try:  # committed before the token leaves, as on the full path
            await rt.group.submit([result.row])
        except Exception:
            log.exception("lean token answer: its audit event was not committed; answered 503")
            await _unrecorded(send)
            return
        content = result.body(access_token)
        headers = [*HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        self.answered(rt, eco, result.client_id, started)

    def runtime(self) -> Any:
        """The app's runtime once its lifespan has started it; else None."""
        return getattr(self.owner.state, "rt", None)

    def answered(self, rt: Any, eco: str, client_id: str, started: float) -> None:
        """Book-keeping once a lean answer has left: HTTP metrics, refresh-ahead."""
        self.issued += 1
        self.counted.inc()
        self.timed.observe(time.perf_counter() - started)
        self.refresh_ahead(rt, eco, client_id)

    def refresh_ahead(self, rt: Any, eco: str, client_id: str) -> None:
        """Re-read the ecosystem, client and key of a busy client before they expire.

        Without it, every ``ttl`` seconds the entries lapse and every request in flight
        until one of them has refilled the cache takes the full path. The refreshed
        entries are read from the database as the full path reads them, so nothing is
        served older than ``ttl``; an ecosystem forgotten meanwhile (an admin change
        here) is not refilled with what was read before the change.
        """
        key = (eco, client_id)
        now = time.monotonic()
        if self._next_check.get(key, 0.0) > now or key in self._refreshing:
            return
        if len(self._next_check) > 4096:
            self._next_check.clear()
        self._next_check[key] = now + CHECK_EVERY
        rows, keys = rt.rows, rt.keys
        eco_row = rows.get((eco,))
        if eco_row is None:
            return
        alg = access_token_alg(eco_row)
        ages = (rows.age((eco,)), rows.age(key), keys.signer_age(eco, alg))
        due = AHEAD * rows.ttl, AHEAD * rows.ttl, AHEAD * keys.ttl
        if not any(age is not None and age > limit for age, limit in zip(ages, due, strict=True)):
            return
        self._refreshing.add(key)
        task = asyncio.create_task(self._refresh(rt, eco, client_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, rt: Any, eco: str, client_id: str) -> None:
        rows = rt.rows
        generation = rows.generation(eco)

        def read(tx: Any) -> None:
            eco_row = repo.get_ecosystem(tx.s, eco)
            if eco_row is None or eco_row.disabled_at is not None:
                return  # let the entries lapse: the full path answers from then on
            client = repo.get_client(tx.s, eco, client_id)
            if rows.generation(eco) != generation:
                return
            rt.keys.reload_signer(tx, eco, access_token_alg(eco_row))
            rows.put_if(generation, (eco,), eco_row)
            if client is not None:
                rows.put_if(generation, (eco, client_id), client)

        try:
            await rt.tx(read)
        except Exception:
            log.warning("refreshing the cached rows of %s/%s failed", eco, client_id, exc_info=True)
        finally:
            self._refreshing.discard((eco, client_id))


UNRECORDED = Problem(
    503, "Service Unavailable", detail="the token could not be recorded; try again"
).json()


async def _unrecorded(send: Send) -> None:
    """503 (RFC 9457) for a token whose audit event could not be committed: not issued."""
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"retry-after", b"1"),
        (b"content-length", str(len(UNRECORDED)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": UNRECORDED})


def signed(issued: Issued | None) -> str | None:
    """The signed token; None (the full path answers) when there is none or signing failed."""
    if issued is None:
        return None
    try:
        return issued.sign()
    except Exception:
        log.exception("lean token path: signing failed; the full path answers")
        return None
