"""A consumer's database is unreachable for a minute under load, then comes back.

Profile consumes the post events; its database goes away (every connection cut, new
ones refused: a network partition or a database failover) while collaboration keeps
acknowledging posts. Profile must say it is not ready while it cannot work, become
ready again by itself, and then apply every event it could not apply during the
outage: none lost, none twice, no process restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from tests.faults.load import Drill, first, record, watch_readiness
from tests.support.topology import Topology

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]
OUTAGE_S = 60.0
SETTLE_S = 120.0  # twice the outage: consumers may wait a minute between retries
CONSUMER = "profile"


class TestConsumerDatabaseOutage:
    async def test_consumer_recovers_every_event_after_its_database_returns(
        self, topology: Topology, drill: Drill
    ) -> None:
        pids = topology.pids()
        readiness: dict[str, list[tuple[float, int]]] = {}
        watcher = asyncio.create_task(watch_readiness(topology, drill, CONSUMER, readiness))
        drill.start()
        await drill.run_for(5)
        t_cut = drill.now()
        dropped = topology.db_proxies[CONSUMER].cut()
        await drill.run_for(OUTAGE_S)
        t_restore = drill.now()
        topology.db_proxies[CONSUMER].restore()
        await drill.run_for(15)
        await drill.stop()
        result, settled_at = await drill.settle(SETTLE_S)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        figures = {
            name: {
                "not_ready_s_after_cut": _after(first(changes, t_cut, ready=False), t_cut),
                "ready_again_s_after_restore": _after(
                    first(changes, t_restore, ready=True), t_restore
                ),
                "changes": changes,
            }
            for name, changes in readiness.items()
        }
        record(
            "database_outage",
            {
                "fault": f"{CONSUMER}'s database unreachable for {OUTAGE_S:.0f}s "
                f"({dropped} connections cut)",
                **drill.summary(),
                "failure_window_s": drill.failure_window(t_cut),
                "failed_during_outage": dict(drill.failures(t_cut, t_restore)),
                "failed_after_restore": dict(drill.failures(t_restore + 1)),
                "readiness": figures,
                "caught_up_with_writes_before_restore_s_after_restore": _after(
                    drill.caught_up_at(t_restore), t_restore
                ),
                "all_consumed_s_after_restore": _after(settled_at, t_restore),
                "reconciliation": result.as_dict(),
                "settled": settled_at is not None,
                "exited": topology.exited(),
            },
        )
        for name, f in figures.items():
            assert f["not_ready_s_after_cut"] is not None, (
                f"{name} stayed ready without its database"
            )
            assert f["ready_again_s_after_restore"] is not None, (
                f"{name} did not become ready again"
            )
        server_errors = Counter(f"{o.op} {o.status}" for o in drill.outcomes if o.status == 500)
        assert not server_errors, (
            f"a database outage is 503 (try again), never 500: {server_errors}"
        )
        assert result.lost_writes == [], "acknowledged posts that collaboration lost"
        assert result.missing_events == 0, (
            f"{result.missing_events} of {result.held} posts had not reached profile's tag "
            f"clouds {SETTLE_S:.0f}s after the load stopped (given up during the "
            f"{OUTAGE_S:.0f}s outage, or waiting out a longer retry delay)"
        )
        assert result.applied_twice == 0, "profile counted posts twice"
        assert topology.exited() == [], topology.tails(topology.exited())
        assert topology.pids() == pids, "a process was restarted"


def _after(t: float | None, since: float) -> float | None:
    return round(t - since, 1) if t is not None else None
