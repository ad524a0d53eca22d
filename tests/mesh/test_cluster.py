"""A 3-node NATS cluster from the wheel: services keep answering when a node dies."""

from __future__ import annotations

import asyncio

import nats
import pytest

from contracts.v1 import system
from mesh.client import call
from mesh.localnats import local_cluster
from mesh.streams import ensure_streams
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support.services import run_service

pytestmark = pytest.mark.slow


async def wait_jetstream(client, timeout: float = 30.0) -> None:
    """The deploy step: the streams, once the cluster has a JetStream meta leader."""
    assert await asyncio.wait_for(ensure_streams(client.jetstream(), client), timeout) == 3


class TestClusterFailover:
    async def test_requests_and_events_survive_a_node_loss(self, tmp_path, test_keys, tokens):
        with local_cluster(3) as (urls, procs):
            client = await nats.connect(
                urls.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2
            )
            js = client.jetstream()
            await wait_jetstream(client)
            async with run_service(
                "profile",
                ProfileSettings,
                models.metadata,
                handlers.register,
                nats_url=urls,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                verifier=test_keys.verifier(),
            ):
                token = tokens.mint()
                assert (
                    await call(client, system.ECHO, {"eco": "acme", "message": "1"}, token)
                ).message == "1"
                await js.publish("pm.v1.evt.acme.identity.audit", b"{}")
                # Kill the node the test client is connected to.
                victim = next(
                    p
                    for p, port in zip(procs, urls.split(","), strict=True)
                    if client.connected_url
                    and client.connected_url.port == int(port.rsplit(":", 1)[1])
                )
                victim.kill()
                victim.wait(5)
                reply = None
                for _ in range(100):
                    try:
                        reply = await call(
                            client, system.ECHO, {"eco": "acme", "message": "2"}, token, timeout=1
                        )
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
                assert reply is not None and reply.message == "2"
                info = None
                for _ in range(100):
                    try:
                        info = await js.stream_info("PM_EVENTS")
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
                assert info is not None and info.state.messages >= 1
                assert info.config.num_replicas == 3
            await client.close()
