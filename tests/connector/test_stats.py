"""The connector's aggregates over NATS: webhook deliveries per day, by status, counted for
the subscribing partner only (operators: everyone's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.v1 import connector as c
from tests.connector.backends import Receiver, receiver_app
from tests.connector.conftest import Mesh
from tests.connector.test_webhooks import deliveries, eventually, inbound, signed, subscribe
from tests.support.infra import serve_app

__all__ = ["inbound"]  # the fixture, used here by name


def week() -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"since": (today - timedelta(days=6)).isoformat(), "until": today.isoformat()}


async def counts(mesh: Mesh, who: str) -> dict[str, list[int]]:
    reply = await mesh(c.DELIVERY_TIMELINE, who, week())
    assert len(reply.starts) == 7
    return {s.name: s.values for s in reply.series}


class TestDeliveryTimeline:
    async def test_the_subscriber_counts_its_deliveries_and_nobody_else_does(
        self, mesh: Mesh, inbound: str
    ) -> None:
        await mesh(
            c.CREATE_EVENT_GRANT,
            "fatima",
            {"partner": "fabrikam", "event_type": "order.shipped", "grantee": "northwind"},
        )
        rx = Receiver()
        async with serve_app(receiver_app(rx)) as url:
            sub = await subscribe(mesh, url)
            rx.secret = sub.secret
            for n in range(3):
                await mesh(c.RECEIVE_WEBHOOK, "fatima", signed(inbound, "order.shipped", {"n": n}))

            async def delivered() -> Any:
                items = await deliveries(mesh, sub.id)
                return len(items) == 3 and all(d.status == "delivered" for d in items)

            await eventually(delivered)
        northwind = await counts(mesh, "nadia")
        assert northwind["delivered"] == [0] * 6 + [3]
        assert northwind["pending"] == [0] * 7 and northwind["dead"] == [0] * 7
        assert (await counts(mesh, "carlos"))["delivered"] == [0] * 7, "another partner"
        assert (await counts(mesh, "fatima"))["delivered"] == [0] * 7, (
            "the source is not the subscriber"
        )
        assert (await counts(mesh, "olivia"))["delivered"][-1] == 3, "operators see everyone's"
