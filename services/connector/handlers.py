"""NATS edge of the connector: each operation's handler ``fn(cx, claims, req)``, bound to
the connector: ``fn(claims, req)``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from pydantic import BaseModel

from contracts.bus import consumer
from contracts.claims import Claims
from contracts.policy import Operation
from contracts.v1 import connector as c
from mesh.runtime import ServiceRuntime
from services.connector import (
    alliances,
    audit,
    flows,
    inbound,
    invocation,
    outbound,
    registry,
    stats,
)
from services.connector.service import Connector

Logic = Callable[[Connector, Claims, Any], Awaitable[BaseModel]]


async def _invoke(cx: Connector, claims: Claims, req: c.InvokeRequest) -> c.InvokeReply:
    caller = invocation.Caller.of(claims)
    return await invocation.invoke(
        cx, caller, req.eco, req.operation, req.input, req.idempotency_key
    )


ROUTES: dict[Operation, Logic] = {
    c.REGISTER_BACKEND: registry.register_backend,
    c.LIST_BACKENDS: registry.list_backends,
    c.ROTATE_CREDENTIALS: registry.rotate_credentials,
    c.UPDATE_BACKEND: registry.update_backend,
    c.DECLARE_OPERATION: registry.declare_operation,
    c.CATALOGUE: registry.catalogue,
    c.GET_OPERATION: registry.get_operation,
    c.CREATE_GRANT: registry.create_grant,
    c.LIST_GRANTS: registry.list_grants,
    c.REVOKE_GRANT: registry.revoke_grant,
    c.GET_ALLOWLIST: registry.get_allowlist,
    c.SET_ALLOWLIST: registry.set_allowlist,
    c.INVOKE: _invoke,
    c.AUDIT: audit.list_audit,
    c.CALL_TIMELINE: stats.call_timeline,
    c.DELIVERY_TIMELINE: stats.delivery_timeline,
    c.CREATE_INBOUND: inbound.create_endpoint,
    c.RECEIVE_WEBHOOK: inbound.receive,
    c.CREATE_EVENT_GRANT: outbound.create_event_grant,
    c.REVOKE_EVENT_GRANT: outbound.revoke_event_grant,
    c.LIST_EVENT_GRANTS: outbound.list_event_grants,
    c.CREATE_SUBSCRIPTION: outbound.create_subscription,
    c.LIST_SUBSCRIPTIONS: outbound.list_subscriptions,
    c.DELETE_SUBSCRIPTION: outbound.delete_subscription,
    c.LIST_DELIVERIES: outbound.list_deliveries,
    c.REPLAY_DELIVERY: outbound.replay,
    c.START_FLOW: flows.start,
    c.GET_FLOW: flows.get,
    c.LIST_FLOWS: flows.list_flows,
}


def register(rt: ServiceRuntime) -> Connector:
    cx = Connector.build(rt)
    rt.endpoints({op: partial(logic, cx) for op, logic in ROUTES.items()})
    rt.consume(
        cx.settings.webhook_consumer,
        consumer("connector-webhooks").filter_subjects,
        lambda session, event: outbound.fan_out(cx, session, event),
    )
    rt.consume(
        cx.settings.alliance_consumer,
        consumer("connector-alliances").filter_subjects,
        alliances.on_event,
    )
    rt.background("lifetime", cx.lifetime)
    rt.background("audit", cx.audit.run)
    rt.background("deliveries", lambda: outbound.deliver_forever(cx))
    rt.background("flows", lambda: flows.run_forever(cx))
    return cx
