"""Retrying with growing, jittered delays: start-up that waits, loops that heal."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Backoff:
    """Delays from ``first`` growing by ``factor`` up to ``cap``, each ±``jitter``;
    :meth:`reset` after a success starts again from ``first``."""

    def __init__(
        self, first: float = 0.2, cap: float = 10.0, factor: float = 2.0, jitter: float = 0.2
    ) -> None:
        self.first = first
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * self.factor**self.attempt)
        self.attempt += 1
        return delay * (1 + random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.attempt = 0

    async def sleep(self) -> None:
        await asyncio.sleep(self.next())


async def retry(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    backoff: Backoff | None = None,
    on_failure: Callable[[Exception], None] | None = None,
) -> T:
    """``await attempt()`` until it succeeds, logging each failure (``what`` failed) and
    waiting a growing delay between tries. Cancellation stops it."""
    backoff = backoff or Backoff()
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if on_failure is not None:
                on_failure(exc)
            delay = backoff.next()
            log.warning(
                "%s failed; retrying in %.1fs",
                what,
                delay,
                extra={"error": f"{exc.__class__.__name__}: {exc}"},
            )
            await asyncio.sleep(delay)
