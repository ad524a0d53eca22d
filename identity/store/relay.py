"""Identity's outbox relay."""

from __future__ import annotations

import asyncio
from typing import Any

from mesh.outbox import OutboxRelay


class LingeringRelay(OutboxRelay):
    """Waits a few milliseconds after a commit wakes it, so that under load one round
    publishes the events of many requests instead of one round per token issued."""

    def __init__(self, *args: Any, linger: float = 0.02, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linger = linger

    async def relay_once(self) -> int:
        if self.linger:
            await asyncio.sleep(self.linger)
        return await super().relay_once()
