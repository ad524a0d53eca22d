"""The NATS node that leads the event stream dies under load, and comes back.

Events must keep flowing (or resume by themselves once it is back), every consumer and
every revocation feed must go on without any process being restarted, and nothing
acknowledged may be lost or applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from contracts.subjects import EVENT_STREAM
from tests.faults.load import Drill, record, watch_readiness
from tests.support.topology import Topology

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
DOWN_S = 15.0  # the node stays dead this long, then is started again
SETTLE_S = 60.0
REVOCATION_S = 30.0  # after the node is back, or after the revocation


async def watch_leader(
    topology: Topology, drill: Drill, log: list[tuple[float, str | None]]
) -> None:
    """Record the stream's leader (None: no leader) every half second."""
    while True:
        log.append((round(drill.now(), 1), await topology.stream_leader()))
        await asyncio.sleep(0.5)


class TestStreamLeaderLoss:
    async def test_events_and_revocations_resume_after_the_stream_leader_dies(
        self, topology: Topology, drill: Drill
    ) -> None:
        pids = topology.pids()
        js = await topology.js()
        replicas = (await js.stream_info(EVENT_STREAM)).config.num_replicas
        drill.start()
        await drill.run_for(5)
        victim = await topology.stream_leader()
        assert victim is not None, "the event stream has no leader before the fault"
        leaders: list[tuple[float, str | None]] = []
        readiness: dict[str, list[tuple[float, int]]] = {}
        watchers = [
            asyncio.create_task(watch_leader(topology, drill, leaders)),
            asyncio.create_task(watch_readiness(topology, drill, "profile", readiness)),
        ]
        t_kill = drill.now()
        topology.kill_node(victim)
        await drill.run_for(5)
        # A token revoked while the node is down must be refused by every gateway
        # replica, at the latest soon after the node is back.
        during = await revocation(drill, t_kill)
        await drill.run_for(max(0.0, DOWN_S - (drill.now() - t_kill)))
        t_back = drill.now()
        await topology.restart_node(victim)
        await during.refused_everywhere()
        await drill.run_for(10)
        # And one revoked once the node is back: the feeds must still be alive.
        after = await revocation(drill, t_kill)
        await after.refused_everywhere()
        await drill.stop()
        result, settled_at = await drill.settle(SETTLE_S)
        for watcher in watchers:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        new_leader = next(((t, n) for t, n in leaders if n and n != victim), None)
        leader_again = next(((t, n) for t, n in leaders if t > t_kill and n), None)
        record(
            "stream_leader_loss",
            {
                "fault": f"kill -9 of NATS node {victim} (leader of {EVENT_STREAM}, "
                f"R{replicas}), restarted after {DOWN_S:.0f}s",
                **drill.summary(),
                "failure_window_s": drill.failure_window(t_kill),
                "stream_leader_again_s_after_kill": (
                    round(leader_again[0] - t_kill, 1) if leader_again else None
                ),
                "other_node_took_over_s_after_kill": (
                    round(new_leader[0] - t_kill, 1) if new_leader else None
                ),
                "caught_up_with_writes_before_kill_s_after_kill": _after(
                    drill.caught_up_at(t_kill), t_kill
                ),
                "caught_up_with_writes_before_restart_s_after_restart": _after(
                    drill.caught_up_at(t_back), t_back
                ),
                "token_revoked_while_down": during.figures(),
                "token_revoked_after_restart": after.figures(),
                "profile_readiness_changes": readiness,
                "all_consumed_s_after_restart": _after(settled_at, t_back),
                "reconciliation": result.as_dict(),
                "settled": settled_at is not None,
                "exited": topology.exited(),
                "progress_tail": drill.progress[-5:],
            },
        )
        for case, check in (("while the node was down", during), ("after", after)):
            assert check.accepted == [200] * len(check.accepted), "a valid token was refused"
            assert check.refused == [401] * len(check.refused), (
                f"a token revoked {case} is still accepted by the gateways: {check.refused} "
                "(a revocation feed did not resume)"
            )
        assert result.lost_writes == [], "acknowledged posts that collaboration lost"
        assert result.missing_events == 0, (
            f"{result.missing_events} of {result.held} posts never reached profile's tag "
            f"clouds within {SETTLE_S:.0f}s of the load's end (consumers did not resume)"
        )
        assert result.applied_twice == 0, "profile counted posts twice"
        assert topology.exited() == [], topology.tails(topology.exited())
        assert topology.pids() == pids, "a process was restarted"


@dataclass
class Revocation:
    """A back-end token, accepted by every gateway, then revoked; did they all refuse it?"""

    drill: Drill
    token: str
    t_kill: float
    accepted: list[int]
    revoked_at: float = 0.0
    refused: list[int] = field(default_factory=list)
    refused_at: float | None = None

    async def refused_everywhere(self) -> None:
        self.refused, took = await self.drill.wait_statuses(self.token, 401, REVOCATION_S)
        self.refused_at = self.drill.now() if took is not None else None

    def figures(self) -> dict[str, Any]:
        return {
            "accepted_before": self.accepted,
            "answers_after_revocation": self.refused,
            "revoked_s_after_kill": round(self.revoked_at - self.t_kill, 1),
            "refused_by_all_s_after_revocation": _after(self.refused_at, self.revoked_at),
        }


async def revocation(drill: Drill, t_kill: float) -> Revocation:
    token, client = await drill.backend_token()
    accepted, _ = await drill.wait_statuses(token, 200, REVOCATION_S)
    check = Revocation(drill, token, t_kill, accepted, revoked_at=drill.now())
    await drill.revoke(token, client)
    return check


def _after(t: float | None, since: float) -> float | None:
    return round(t - since, 1) if t is not None else None
