"""Revoked access tokens, as the gateway and every service see them.

Access tokens are JWTs verified locally, so revoking one at the identity provider
(RFC 7009) would otherwise change nothing until it expires. Identity publishes a
``pm.v1.identity.token_revoked`` event for every access token it revokes;
:class:`RevocationFeed` keeps a process's :class:`RevocationList` fed from them and
:class:`~mesh.tokens.TokenVerifier` refuses a listed ``jti`` (one dict lookup, also
for tokens it had already verified and cached).

Disabling a person or an ecosystem also cuts off, by ``sub`` or for the whole
ecosystem, every token issued before that moment, including those identity keeps no
record of (client credentials, token exchange): ``TokenRevokedData.subjects``. A
token exchanged across an alliance is cut off by the cut-offs of the ecosystem it came
from (its ``fed.eco``) as well as by those of its own.

Every replica needs every revocation, so the feed is not a durable consumer shared by
a queue group (:mod:`mesh.consumer`) but an ephemeral *ordered* consumer per process.
It starts at the longest access-token lifetime ago, so a restarted process replays
every revocation that can still matter before it says it is ready; entries leave the
list once their token has expired anyway, and the list is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from contracts.subjects import EVENT_STREAM, event_filter
from contracts.v1.identity import TokenRevoked
from mesh import metrics
from mesh.nats import ensure_event_stream

log = logging.getLogger(__name__)

SUBJECT = event_filter(source="identity", name="token_revoked")
# The longest access-token lifetime identity allows (24 h) plus clock leeway.
REPLAY_HORIZON_S = 24 * 3600 + 600


class RevocationList:
    """``jti`` → expiry (Unix seconds); an entry is dropped once its token has expired.

    Bounded: past ``max_entries`` the entries that expire soonest go first (logged).
    """

    def __init__(self, max_entries: int = 200_000, leeway: float = 60.0) -> None:
        self.max_entries = max_entries
        self.leeway = leeway
        # Read directly on the hot path (``jti in revoked.jtis``: one dict lookup).
        self.jtis: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        # (ecosystem, sub or None for every token) -> (issued before, rule needed until);
        # empty unless a person or an ecosystem was disabled within a token lifetime
        self.cutoffs: dict[tuple[str, str | None], tuple[int, float]] = {}

    def __contains__(self, jti: object) -> bool:
        return jti in self.jtis

    def __len__(self) -> int:
        return len(self.jtis)

    def add(self, jti: str, exp: float, now: float | None = None) -> bool:
        """Remember ``jti`` until ``exp``; False when it has expired already or was known."""
        now = time.time() if now is None else now
        self.prune(now)
        if exp + self.leeway <= now or jti in self.jtis:
            return False
        self.jtis[jti] = exp
        heapq.heappush(self._heap, (exp, jti))
        while len(self.jtis) > self.max_entries:
            dropped_exp, dropped = heapq.heappop(self._heap)
            if self.jtis.get(dropped) == dropped_exp:
                del self.jtis[dropped]
                log.warning("revocation list full; dropped the entry expiring soonest")
        return True

    def prune(self, now: float | None = None) -> None:
        """Forget tokens that have expired (a verifier refuses them anyway)."""
        limit = (time.time() if now is None else now) - self.leeway
        while self._heap and self._heap[0][0] <= limit:
            exp, jti = heapq.heappop(self._heap)
            if self.jtis.get(jti) == exp:
                del self.jtis[jti]
        for key, (_, until) in list(self.cutoffs.items()):
            if until <= limit:
                del self.cutoffs[key]

    def cut_off(
        self, eco: str, sub: str | None, before: int, until: float, now: float | None = None
    ) -> bool:
        """Refuse the tokens of ``sub`` in ``eco`` (every token: ``sub`` None) issued before
        ``before`` until ``until``; False when that changes nothing."""
        now = time.time() if now is None else now
        self.prune(now)
        known = self.cutoffs.get((eco, sub))
        if until + self.leeway <= now or (known is not None and known[0] >= before):
            return False
        self.cutoffs[(eco, sub)] = (before, max(until, known[1] if known else until))
        return True

    def cut(self, eco: str, sub: str, iat: int) -> bool:
        """True when a token of ``sub`` in ``eco`` issued at ``iat`` is cut off."""
        cutoffs = self.cutoffs
        whole = cutoffs.get((eco, None))
        if whole is not None and iat < whole[0]:
            return True
        mine = cutoffs.get((eco, sub))
        return mine is not None and iat < mine[0]


class RevocationFeed:
    """Feeds a :class:`RevocationList` from identity's ``token_revoked`` events."""

    def __init__(
        self,
        js: JetStreamContext,
        revoked: RevocationList,
        horizon_s: float = REPLAY_HORIZON_S,
        catch_up_timeout: float = 10.0,
    ) -> None:
        self.js = js
        self.revoked = revoked
        self.horizon_s = horizon_s
        self.catch_up_timeout = catch_up_timeout
        self._sub: Any = None
        self._received = 0
        self.caught_up = False  # True once start() replayed everything the stream had
        self._progress = asyncio.Event()

    async def start(self) -> None:
        """Subscribe and replay the recent revocations before returning (bounded wait)."""
        await ensure_event_stream(self.js)
        since = datetime.now(UTC) - timedelta(seconds=self.horizon_s)
        self._sub = await self.js.subscribe(
            SUBJECT,
            stream=EVENT_STREAM,
            cb=self._on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since),
        )
        try:
            await asyncio.wait_for(self._catch_up(), self.catch_up_timeout)
            self.caught_up = True
        except TimeoutError:
            log.warning("revocations not fully replayed at start; going on")

    async def _catch_up(self) -> None:
        """Until the server has nothing more for us and we have read all it delivered."""
        while True:
            info = await self._sub.consumer_info()
            if not info.num_pending and self._received >= info.delivered.consumer_seq:
                return
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 0.2)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Any) -> None:
        self._received += 1
        self._progress.set()
        try:
            event = TokenRevoked.model_validate_json(msg.data)
        except ValidationError:
            log.error("undecodable revocation event dropped")
            metrics.events_consumed.labels("revocations", "poison").inc()
            return
        for token in event.data.tokens:
            self.revoked.add(token.jti, token.exp)
        for subject in event.data.subjects:
            self.revoked.cut_off(event.ecosystem, subject.sub, subject.before, subject.until)
        metrics.events_consumed.labels("revocations", "ok").inc()
