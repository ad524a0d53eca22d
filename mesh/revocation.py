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
from (its ``fed.eco``) as well as by those of its own; and when the alliance is
suspended or ended, by a cut-off of its own ecosystem naming that origin
(``RevokedSubject.origin``: every token exchanged from there up to then).

Every replica needs every revocation, so the feed is not a durable consumer shared by
a queue group (:mod:`mesh.consumer`) but an ephemeral consumer of its own per process,
read in stream order. It starts at the longest access-token lifetime ago, so a
restarted process replays every revocation that can still matter before it says it is
ready; entries leave the list once their token has expired anyway, and the list is
bounded.

The feed never dies silently: whatever happens to the stream (its leader lost, a
reconnect, its consumer gone), it backs off and makes a new consumer from the
sequence after the last one it applied, for as long as it takes. Meanwhile
:attr:`RevocationFeed.healthy` is False (readiness fails: a process that cannot hear
revocations must not look ready) and ``pm_revocation_feed_age_seconds`` grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from contracts.subjects import EVENT_STREAM, event_filter
from contracts.v1.identity import TokenRevoked
from mesh import metrics
from mesh.backoff import Backoff
from mesh.outbox import stop_if_cancelled
from mesh.streams import ephemeral_reader

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
        # (ecosystem, origin ecosystem) -> (issued before, rule needed until): the tokens
        # exchanged from an ally whose alliance was suspended or ended; empty otherwise
        self.origins: dict[tuple[str, str], tuple[int, float]] = {}

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
        for pair, (_, until) in list(self.origins.items()):
            if until <= limit:
                del self.origins[pair]

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

    def cut_off_origin(
        self, eco: str, origin: str, before: int, until: float, now: float | None = None
    ) -> bool:
        """Refuse the tokens of ``eco`` exchanged from ``origin`` (their ``fed.eco``) issued
        before ``before`` until ``until``; False when that changes nothing."""
        now = time.time() if now is None else now
        self.prune(now)
        known = self.origins.get((eco, origin))
        if until + self.leeway <= now or (known is not None and known[0] >= before):
            return False
        self.origins[(eco, origin)] = (before, max(until, known[1] if known else until))
        return True

    def cut_from(self, eco: str, origin: str, iat: int) -> bool:
        """True when a token of ``eco`` exchanged from ``origin`` at ``iat`` is cut off."""
        rule = self.origins.get((eco, origin))
        return rule is not None and iat < rule[0]

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
        *,
        fetch_timeout: float = 1.0,
        check_interval: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.js = js
        self.revoked = revoked
        self.horizon_s = horizon_s
        self.catch_up_timeout = catch_up_timeout
        self.fetch_timeout = fetch_timeout
        self.check_interval = check_interval
        self.backoff = backoff or Backoff(0.2, 5.0)
        self.caught_up = False  # True once start() replayed everything the stream had
        self.healthy = False  # heard from the stream lately, and no error since
        self.last_error = ""
        self.last_heard = 0.0  # time.monotonic() of the last word from the stream
        self._next_seq = 0  # stream sequence after the last message applied (0: none yet)
        self._reached_end = asyncio.Event()
        self._consumer = ""
        self._started_at = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def age(self) -> float:
        """Seconds since the feed last heard from the stream (inf: never)."""
        return time.monotonic() - self.last_heard if self.last_heard else float("inf")

    async def start(self) -> None:
        """Follow the stream in a task of its own, after replaying the recent revocations
        (waiting at most ``catch_up_timeout`` for that)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervised(), name="revocation-feed")
            self._started_at = time.monotonic()
            metrics.revocation_feed_age.set_function(self.silence)
        try:
            await asyncio.wait_for(self._reached_end.wait(), self.catch_up_timeout)
            self.caught_up = True
        except TimeoutError:
            log.warning("revocations not fully replayed at start; going on")

    def silence(self) -> float:
        """Seconds since the feed last heard from the stream, or since it started when it
        never has (the ``pm_revocation_feed_age_seconds`` gauge)."""
        return time.monotonic() - (self.last_heard or self._started_at or time.monotonic())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._up(False)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def following(self) -> bool:
        """Running and able to pull: what readiness asks of the feed."""
        return self.running and self.healthy

    async def _supervised(self) -> None:
        """:meth:`run`, run again should it ever end (it handles its own errors: only a
        bug would end it)."""
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("revocation feed crashed; restarting")
            self._up(False)
            await self.backoff.sleep()

    async def run(self) -> None:
        """Read and apply revocations until cancelled; a failure only makes it start over
        from where it was."""
        sub: Any = None
        try:
            while True:
                try:
                    if sub is None:
                        sub = await self._subscribe()
                    await self._pull(sub)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._failed(exc)
                    await self._drop(sub)
                    sub = None
                    await self.backoff.sleep()
                    continue
                self.backoff.reset()
        finally:
            await self._drop(sub)

    async def _subscribe(self) -> Any:
        """An ephemeral consumer from where the feed left off (at first: the horizon)."""
        if self._next_seq:
            start: dict[str, Any] = {
                "deliver_policy": DeliverPolicy.BY_START_SEQUENCE,
                "opt_start_seq": self._next_seq,
            }
        else:
            since = datetime.now(UTC) - timedelta(seconds=self.horizon_s)
            start = {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": since}
        sub, self._consumer = await ephemeral_reader(
            self.js,
            SUBJECT,
            "revocations",
            inactive_threshold=max(30.0, 10 * self.fetch_timeout),
            **start,
        )
        await self._check(sub)
        return sub

    async def _pull(self, sub: Any) -> None:
        try:
            msgs = await sub.fetch(256, timeout=self.fetch_timeout)
        except (NatsTimeoutError, TimeoutError):
            stop_if_cancelled()
            msgs = []
        for msg in msgs:
            try:
                self._apply(msg.data)
            except Exception:  # a bug must not make the feed re-read this message for ever
                log.exception("revocation event could not be applied; skipped")
                metrics.events_consumed.labels("revocations", "failed").inc()
            self._next_seq = msg.metadata.sequence.stream + 1
        if msgs:
            self._heard()
        catching_up = not msgs and not self._reached_end.is_set()
        if catching_up or time.monotonic() - self.last_heard >= self.check_interval:
            await self._check(sub)

    async def _check(self, sub: Any) -> None:
        """Ask for the consumer's state: proves the stream answers, and tells when the
        feed has read everything there is."""
        info = await sub.consumer_info()
        self._heard()
        self._consumer = info.name
        if not info.num_pending:
            self._reached_end.set()

    def _heard(self) -> None:
        self.last_heard = time.monotonic()
        if not self.healthy:
            if self.last_error:
                log.info("revocation feed following the stream again")
            self.last_error = ""
            self._up(True)

    def _failed(self, exc: Exception) -> None:
        error = f"{exc.__class__.__name__}: {exc}"
        if self.healthy or error != self.last_error:
            log.warning("revocation feed cannot pull; retrying", extra={"error": error})
        self.last_error = error
        self._up(False)

    def _up(self, up: bool) -> None:
        self.healthy = up
        metrics.revocation_feed_up.set(1 if up else 0)

    async def _drop(self, sub: Any) -> None:
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if self._consumer:
            # Else the server drops it once inactive for inactive_threshold.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.js.delete_consumer(EVENT_STREAM, self._consumer), 1)
            self._consumer = ""

    def _apply(self, data: bytes) -> None:
        try:
            event = TokenRevoked.model_validate_json(data)
        except ValidationError:
            log.error("undecodable revocation event dropped")
            metrics.events_consumed.labels("revocations", "poison").inc()
            return
        for token in event.data.tokens:
            self.revoked.add(token.jti, token.exp)
        for subject in event.data.subjects:
            if subject.origin is not None:
                self.revoked.cut_off_origin(
                    event.ecosystem, subject.origin, subject.before, subject.until
                )
            else:
                self.revoked.cut_off(event.ecosystem, subject.sub, subject.before, subject.until)
        metrics.events_consumed.labels("revocations", "ok").inc()
