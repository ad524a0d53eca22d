"""Standard Webhooks in (signed, fresh, de-duplicated, on JetStream) and out (signed, retried)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from contracts.errors import ErrorCode
from contracts.subjects import event_subject
from contracts.v1 import connector as c
from mesh.errors import MeshError
from mesh.localnats import free_port
from tests.connector.backends import Receiver, receiver_app, standard_signature
from tests.connector.conftest import Mesh
from tests.support.bombs import nested_objects
from tests.support.infra import serve_app

T = TypeVar("T")


async def refused(coro: Awaitable[object]) -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value


def signed(
    secret: str,
    kind: str,
    data: dict[str, Any],
    msg_id: str | None = None,
    ts: int | None = None,
) -> dict[str, Any]:
    """What fabrikam's back-end sends: the three headers and the raw body, as fields."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if ts is None else ts
    body = json.dumps({"type": kind, "timestamp": ts, "data": data})
    return {
        "partner": "fabrikam",
        "endpoint": "erp-events",
        "webhook_id": msg_id,
        "webhook_timestamp": str(ts),
        "webhook_signature": standard_signature(secret, msg_id, str(ts), body),
        "body": body,
    }


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def inbound(mesh: Mesh, connector: Any, loopback_allowed: None) -> str:
    """fabrikam's inbound endpoint; returns its signing secret (shown once)."""
    reply = await mesh(c.CREATE_INBOUND, "fatima", {"partner": "fabrikam", "name": "erp-events"})
    assert reply.secret.startswith("whsec_")
    return str(reply.secret)


class TestInbound:
    async def test_verified_message_is_published_once(
        self, mesh: Mesh, nc: Client, inbound: str
    ) -> None:
        js = nc.jetstream()
        got: list[c.PartnerEventReceived] = []

        async def collect(m: Msg) -> None:
            got.append(c.PartnerEventReceived.model_validate_json(m.data))

        subject = event_subject("acme", "pm.v1.connector.partner_event")
        sub = await js.subscribe(subject, ordered_consumer=True, cb=collect)
        msg = signed(inbound, "order.shipped", {"order": "o-1"})
        first = await mesh(c.RECEIVE_WEBHOOK, "fatima", msg)
        again = await mesh(c.RECEIVE_WEBHOOK, "fatima", msg)
        assert (first.duplicate, again.duplicate) == (False, True)

        def mine() -> list[c.PartnerEventReceived]:
            return [e for e in got if e.data.webhook_id == msg["webhook_id"]]

        async def published() -> list[c.PartnerEventReceived]:
            return mine()

        await eventually(published)
        await asyncio.sleep(0.3)
        await sub.unsubscribe()
        assert len(mine()) == 1
        event = mine()[0]
        assert (event.partner, event.data.event_type, event.data.payload) == (
            "fabrikam",
            "order.shipped",
            {"order": "o-1"},
        )

    async def test_bad_signature_stale_timestamp_and_other_partner(
        self, mesh: Mesh, inbound: str
    ) -> None:
        msg = signed(inbound, "order.shipped", {})
        tampered = {**msg, "body": msg["body"].replace("order.shipped", "order.cancelled")}
        err = await refused(mesh(c.RECEIVE_WEBHOOK, "fatima", tampered))
        assert err.code is ErrorCode.UNAUTHENTICATED
        wrong_key = signed("whsec_" + "A" * 44, "order.shipped", {})
        assert (await refused(mesh(c.RECEIVE_WEBHOOK, "fatima", wrong_key))).code is (
            ErrorCode.UNAUTHENTICATED
        )
        stale = signed(inbound, "order.shipped", {}, ts=int(time.time()) - 3600)
        err = await refused(mesh(c.RECEIVE_WEBHOOK, "fatima", stale))
        assert err.code is ErrorCode.UNAUTHENTICATED and "tolerance" in err.detail
        err = await refused(mesh(c.RECEIVE_WEBHOOK, "carlos", msg))
        assert err.code is ErrorCode.FORBIDDEN  # contoso cannot push into fabrikam's endpoint
        err = await refused(mesh(c.RECEIVE_WEBHOOK, "fatima", {**msg, "endpoint": "nope"}))
        assert err.code is ErrorCode.NOT_FOUND
        not_json = signed(inbound, "x", {})
        not_json["body"] = "not json"
        not_json["webhook_signature"] = standard_signature(
            inbound, not_json["webhook_id"], not_json["webhook_timestamp"], "not json"
        )
        assert (await refused(mesh(c.RECEIVE_WEBHOOK, "fatima", not_json))).code is (
            ErrorCode.BAD_REQUEST
        )
        bomb = signed(inbound, "x", {})
        bomb["body"] = nested_objects()
        bomb["webhook_signature"] = standard_signature(
            inbound, bomb["webhook_id"], bomb["webhook_timestamp"], bomb["body"]
        )
        err = await refused(mesh(c.RECEIVE_WEBHOOK, "fatima", bomb))
        assert err.code is ErrorCode.BAD_REQUEST and "not JSON" in err.detail


async def subscribe(mesh: Mesh, url: str, who: str = "nadia", partner: str = "northwind") -> Any:
    return await mesh(
        c.CREATE_SUBSCRIPTION,
        who,
        {
            "partner": partner,
            "source_partner": "fabrikam",
            "event_types": ["order.shipped"],
            "url": f"{url}/hook",
        },
    )


async def deliveries(mesh: Mesh, sub_id: str) -> Any:
    return (
        await mesh(c.LIST_DELIVERIES, "nadia", {"partner": "northwind", "subscription": sub_id})
    ).items


class TestOutbound:
    async def test_subscription_needs_a_grant(self, mesh: Mesh, inbound: str) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        assert (await refused(subscribe(mesh, url))).code is ErrorCode.FORBIDDEN
        grant = await mesh(
            c.CREATE_EVENT_GRANT,
            "fatima",
            {"partner": "fabrikam", "event_type": "order.shipped", "grantee": "northwind"},
        )
        sub = await subscribe(mesh, url)
        assert sub.secret.startswith("whsec_")
        listed = await mesh(c.LIST_SUBSCRIPTIONS, "nadia", {"partner": "northwind"})
        assert [s.secret for s in listed.items] == [None]
        err = await refused(
            mesh(c.LIST_DELIVERIES, "carlos", {"partner": "northwind", "subscription": sub.id})
        )
        assert err.code is ErrorCode.FORBIDDEN
        err = await refused(
            mesh(c.REVOKE_EVENT_GRANT, "carlos", {"partner": "fabrikam", "grant": grant.id})
        )
        assert err.code is ErrorCode.FORBIDDEN
        err = await refused(subscribe(mesh, "http://169.254.169.254"))
        assert err.code is ErrorCode.BAD_REQUEST

    async def test_receiver_down_for_a_while_gets_each_webhook_once(
        self, mesh: Mesh, inbound: str
    ) -> None:
        await mesh(
            c.CREATE_EVENT_GRANT, "fatima", {"partner": "fabrikam", "event_type": "order.shipped"}
        )
        port = free_port()
        sub = await subscribe(mesh, f"http://127.0.0.1:{port}")
        sent = [signed(inbound, "order.shipped", {"order": f"o-{i}"}) for i in range(5)]
        for msg in sent:
            await mesh(c.RECEIVE_WEBHOOK, "fatima", msg)

        # nothing listens yet: every delivery failed at least twice
        async def all_retried() -> Any:
            items = await deliveries(mesh, sub.id)
            return len(items) == 5 and all(d.attempts >= 2 for d in items) and items

        await eventually(all_retried)
        rx = Receiver(secret=sub.secret, lose_first_ack=True)
        async with serve_app(receiver_app(rx), port=port):

            async def all_delivered() -> Any:
                items = await deliveries(mesh, sub.id)
                return all(d.status == "delivered" for d in items) and items

            items = await eventually(all_delivered)
        assert rx.bad_signatures == 0
        assert len(rx.processed) == 5  # each id processed once in effect…
        assert len(rx.received) >= 10  # …although each arrived twice (first ack was lost)
        payloads = sorted(json.loads(b)["data"]["order"] for b in rx.processed.values())
        assert payloads == [f"o-{i}" for i in range(5)]
        assert {d.webhook_id for d in items} == set(rx.processed)

    async def test_dead_letter_then_replay(self, mesh: Mesh, inbound: str, connector: Any) -> None:
        connector.settings.delivery_max_attempts = 3
        await mesh(
            c.CREATE_EVENT_GRANT,
            "fatima",
            {"partner": "fabrikam", "event_type": "order.shipped", "grantee": "northwind"},
        )
        rx = Receiver(fail_all=True)
        async with serve_app(receiver_app(rx)) as url:
            sub = await subscribe(mesh, url)
            rx.secret = sub.secret
            await mesh(c.RECEIVE_WEBHOOK, "fatima", signed(inbound, "order.shipped", {"n": 1}))

            async def dead() -> Any:
                items = await deliveries(mesh, sub.id)
                return items and items[0].status == "dead" and items[0]

            d = await eventually(dead)
            assert d.attempts == 3 and d.last_status == 503 and len(rx.received) == 3
            rx.fail_all = False
            err = await refused(
                mesh(c.REPLAY_DELIVERY, "carlos", {"partner": "northwind", "delivery": d.id})
            )
            assert err.code is ErrorCode.FORBIDDEN
            await mesh(c.REPLAY_DELIVERY, "nadia", {"partner": "northwind", "delivery": d.id})

            async def delivered() -> bool:
                items = await deliveries(mesh, sub.id)
                return bool(items[0].status == "delivered")

            await eventually(delivered)
        assert list(rx.processed) == [d.webhook_id]

    async def test_revoked_event_grant_stops_deliveries(self, mesh: Mesh, inbound: str) -> None:
        grant = await mesh(
            c.CREATE_EVENT_GRANT,
            "fatima",
            {"partner": "fabrikam", "event_type": "order.shipped", "grantee": "northwind"},
        )
        rx = Receiver()
        async with serve_app(receiver_app(rx)) as url:
            sub = await subscribe(mesh, url)
            rx.secret = sub.secret
            await mesh(c.RECEIVE_WEBHOOK, "fatima", signed(inbound, "order.shipped", {"n": 1}))

            async def one() -> bool:
                return len(rx.processed) == 1

            await eventually(one)
            await mesh(c.REVOKE_EVENT_GRANT, "fatima", {"partner": "fabrikam", "grant": grant.id})
            await mesh(c.RECEIVE_WEBHOOK, "fatima", signed(inbound, "order.shipped", {"n": 2}))
            await mesh(c.RECEIVE_WEBHOOK, "fatima", signed(inbound, "order.other", {"n": 3}))
            await asyncio.sleep(1.0)
        assert len(rx.processed) == 1 and len(await deliveries(mesh, sub.id)) == 1
