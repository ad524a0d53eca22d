"""The whole deployment starts at once, as an orchestrator starts it: every replica of
every process together, on a NATS cluster still electing its leaders and on fresh,
empty databases. Each must become ready by itself, none may exit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.load import Drill, record
from tests.support.topology import Topology, TopologyConfig, TopologyError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CONFIG = TopologyConfig(
    staggered=False, wait_for_jetstream=False, ready_timeout=90.0, start_attempts=1
)


class TestColdStart:
    async def test_every_replica_starts_together_and_becomes_ready(
        self, tmp_path: Path, pg_admin: str
    ) -> None:
        topology = Topology(tmp_path / "mesh", pg_admin, CONFIG)
        t0 = time.monotonic()
        error = None
        try:
            try:
                await topology.start()
            except TopologyError as exc:
                error = exc
            ready_s = time.monotonic() - t0
            exited = topology.exited()
            figures = {
                "fault": "every replica started at once on a fresh cluster and fresh databases",
                "ready_s": round(ready_s, 1) if error is None else None,
                "exited": {n: topology.processes[n].last_error() for n in exited},
            }
            if error is None:
                # Ready means serving: a post reaches its author's tag cloud.
                drill = Drill(topology)
                await drill.prepare()
                result, settled = await drill.settle(60)
                figures["first_events_consumed"] = settled is not None
                await drill.client.aclose()
                anonymous_refused = await _anonymous_is_refused(topology.nats_url)
            record("cold_start", figures)
        finally:
            await topology.stop()
        assert exited == [], f"replicas exited at start: {figures['exited']}"
        assert error is None, f"the deployment did not start: {error}"
        assert result.missing_events == 0 and settled is not None
        assert anonymous_refused, "the production-like bus admitted an anonymous client"


async def _anonymous_is_refused(url: str) -> bool:
    """Whether the cluster turns away a client without a key (as production must)."""
    import nats
    from nats.errors import Error as NatsError

    try:
        nc = await nats.connect(
            servers=url.split(","), allow_reconnect=False, max_reconnect_attempts=0
        )
    except (NatsError, OSError):
        return True
    await nc.close()
    return False
