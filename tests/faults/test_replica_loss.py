"""kill -9 of a service replica and of a gateway replica under steady load: nothing lost."""

from __future__ import annotations

import pytest

from tests.faults.load import Drill, record
from tests.support.topology import Topology

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
SETTLE_S = 60.0
# (replica, why it matters): the consumer of the posts' events, a producer of them
# with its outbox, and a gateway with requests in flight.
VICTIMS = (
    ("profile-0", "consumes the post events"),
    ("collaboration-1", "writes posts and relays their events"),
    ("gateway-0", "answers half the requests"),
)


class TestReplicaLoss:
    async def test_kill_9_of_replicas_loses_no_write_and_no_event(
        self, topology: Topology, drill: Drill
    ) -> None:
        others = {n: pid for n, pid in topology.pids().items() if n not in dict(VICTIMS)}
        drill.start()
        await drill.run_for(5)
        phases = {}
        for name, _why in VICTIMS:
            t = drill.now()
            topology.kill(name)
            await drill.run_for(5)
            phases[name] = {"killed_at_s": round(t, 1)}
        t_restart = drill.now()
        for name, _why in VICTIMS:
            await topology.restart(name)
            phases[name]["back_ready_after_s"] = round(drill.now() - t_restart, 1)
        await drill.run_for(5)
        await drill.stop()
        result, settled_at = await drill.settle(SETTLE_S)
        t_first_kill = phases[VICTIMS[0][0]]["killed_at_s"]
        record(
            "replica_loss",
            {
                "fault": "kill -9 of " + ", ".join(n for n, _ in VICTIMS),
                **drill.summary(),
                "phases": phases,
                "failure_window_s": drill.failure_window(t_first_kill),
                "reconciliation": result.as_dict(),
                "all_consumed_s_after_load_stopped": (
                    round(settled_at - drill.progress[-1][0], 1) if settled_at else None
                ),
                "exited": topology.exited(),
            },
        )
        assert result.lost_writes == [], "acknowledged posts that collaboration lost"
        assert result.missing_events == 0, (
            f"{result.missing_events} posts never reached profile's tag clouds"
        )
        assert result.applied_twice == 0, "profile counted posts twice"
        assert topology.exited() == [], topology.tails(topology.exited())
        assert {n: topology.processes[n].pid for n in others} == others, "a replica restarted"
