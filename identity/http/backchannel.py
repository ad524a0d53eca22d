"""Delivering logout tokens (OpenID Connect Back-Channel Logout 1.0), in the background.

Logouts queue their deliveries in the database (:mod:`identity.domain.sessions`); this
loop, in every replica, leases the due ones, signs each logout token when it sends it,
POSTs it to the client's ``backchannel_logout_uri`` through the kit's egress guard
(:mod:`mesh.egress`: no loopback, private or metadata address unless
``PM_IDENTITY_BACKCHANNEL_ALLOWED_NETWORKS`` allows it, checked again at connect time)
and retries a failure with backoff. A logout in this process wakes it at once; it also
polls, for what other replicas queued, and ends expired sessions now and then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import httpcore
import httpx

from identity.domain import sessions
from identity.store import repository as repo
from identity.store.models import LogoutDelivery
from identity.store.transaction import Tx
from mesh import egress

if TYPE_CHECKING:
    from identity.http.runtime import IdentityRuntime

log = logging.getLogger(__name__)
LEASE_S = 30.0


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx over a pool that dials only addresses the egress guard accepts."""

    def __init__(self, allowed: list[egress.Network]) -> None:  # no super(): we own the pool
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=50,
            keepalive_expiry=5.0,
            network_backend=egress.GuardedBackend(lambda: allowed),
        )


class BackChannel:
    """The delivery loop; :meth:`wake` after queuing logouts in this process."""

    def __init__(self) -> None:
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, rt: IdentityRuntime) -> None:
        allowed = egress.parse_networks(rt.settings.backchannel_allowed_networks)
        transport = GuardedTransport(allowed)
        timeout = httpx.Timeout(rt.settings.backchannel_timeout_s)
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        ) as http:
            swept = 0.0
            while True:
                try:
                    if time.monotonic() - swept > rt.settings.session_sweep_s:
                        swept = time.monotonic()
                        await rt.tx(sessions.end_expired_sessions)
                    while await self._round(rt, http, allowed):
                        pass
                except Exception:  # a database hiccup: try again next round
                    log.exception("back-channel logout round failed")
                try:
                    await asyncio.wait_for(self._wake.wait(), rt.settings.backchannel_poll_s)
                except TimeoutError:
                    pass
                self._wake.clear()

    async def _round(
        self, rt: IdentityRuntime, http: httpx.AsyncClient, allowed: list[egress.Network]
    ) -> bool:
        """Send what is due; True if there was anything."""
        jobs = await rt.tx(lambda tx: _prepare(rt, tx))
        if not jobs:
            return False
        results = await asyncio.gather(*(_send(http, allowed, uri, tok) for _j, uri, tok in jobs))

        def record(tx: Tx) -> None:
            for (jti, _uri, _token), error in zip(jobs, results, strict=True):
                if error is None:
                    sessions.delivered(tx, jti)
                else:
                    sessions.failed(tx, jti, error)

        await rt.tx(record)
        return True


def _prepare(rt: IdentityRuntime, tx: Tx) -> list[tuple[str, str, str]]:
    """(jti, uri, signed logout token) of each delivery due now, leased to this replica."""
    jobs = []
    for row in sessions.claim_due(tx, LEASE_S):
        client = repo.get_client(tx.s, row.eco, row.client_id)
        if client is None or not client.backchannel_logout_uri:
            repo.remove(tx.s, row)  # the client is gone or no longer wants them
            continue
        token = _sign(rt, tx, row, client.id_token_alg)
        jobs.append((row.jti, client.backchannel_logout_uri, token))
    return jobs


def _sign(rt: IdentityRuntime, tx: Tx, row: LogoutDelivery, alg: str) -> str:
    signer = rt.keys.signer(tx, row.eco, alg)
    return sessions.logout_token(signer, rt.settings.issuer(row.eco), row)


async def _send(
    http: httpx.AsyncClient, allowed: list[egress.Network], uri: str, token: str
) -> str | None:
    """POST one logout token; None when the RP took it (2xx), else why not."""
    try:
        await egress.check_url(uri, allowed)
        resp = await http.post(
            uri,
            data={"logout_token": token},
            headers={"Cache-Control": "no-store"},
        )
    except (egress.EgressRefused, httpx.HTTPError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= resp.status_code < 300:
        return None
    return f"HTTP {resp.status_code}"
