"""Contracts of the connector service: operations (with their policies) and events.

A partner registers back-end systems and declares operations on them, grants
operations (and its webhook event types) to named partners or the whole
ecosystem, and others invoke them through the connector, which holds the
credentials in its vault. Inbound webhooks from back-ends become events;
outbound webhooks deliver granted events to subscribers; flows chain several
partners' operations durably.

Across an alliance (:mod:`contracts.v1.alliances`), a partner may grant an operation to a
partner of the allied ecosystem (``grantee_eco``) when the owner ecosystem's terms let it;
that partner invokes it at the owner ecosystem's route with a token exchanged into it
(RFC 8693, ``fed`` naming its own ecosystem and partner), sees it in its own ecosystem's
catalogue, may call it from a flow, and finds the call in its own ecosystem's audit.

Identifiers: a back-end is named per partner; an operation is named
``<partner>.<name>`` across the ecosystem (e.g. ``fabrikam.forecast``).
Secrets (API keys, client secrets, private keys, webhook signing secrets) are
write-only: no reply carries them, except a webhook signing secret the
connector generated, shown once when it is created.
"""

# ruff: noqa: F403, F405
from __future__ import annotations

from pydantic import BaseModel

from contracts.claims import Role, Scope
from contracts.envelope import EventBase
from contracts.policy import Operation, Policy
from contracts.subjects import request_subject
from contracts.timeseries import TimeSeries, TimeSeriesQuery
from contracts.v1.connector.backends import *
from contracts.v1.connector.flows import *
from contracts.v1.connector.webhooks import *

ECO = "/v1/ecosystems/{eco}"
PARTNER = ECO + "/partners/{partner}"
ADMINS = frozenset({Role.PARTNER_ADMIN, Role.OPERATOR})


def _op(
    name: str,
    method: str,
    path: str,
    request: type[BaseModel],
    reply: type[BaseModel],
    policy: Policy,
    summary: str,
    status: int = 200,
) -> Operation:
    return Operation(
        name=f"connector.{name}",
        subject=request_subject("connector", name),
        method=method,
        path=path,
        request=request,
        reply=reply,
        policy=policy,
        summary=summary,
        status=status,
        tags=("connector",),
    )


def _admin(partner_bound: bool = True) -> Policy:
    return Policy(
        scope=Scope.CONNECTOR_ADMIN,
        roles=ADMINS,
        partner_param="partner" if partner_bound else None,
    )


# --- operations ------------------------------------------------------------------------------

_READ = Policy(scope=Scope.CONNECTOR_READ)
_INVOKE = Policy(scope=Scope.CONNECTOR_INVOKE)
_ADMIN_ANY = _admin(partner_bound=False)
_OPERATOR = Policy(scope=Scope.ADMIN, roles=frozenset({Role.OPERATOR}))
_PARTNER_READ = Policy(scope=Scope.CONNECTOR_READ, partner_param="partner")
_PARTNER_INVOKE = Policy(scope=Scope.CONNECTOR_INVOKE, partner_param="partner")

REGISTER_BACKEND = _op(
    "backend_register",
    "POST",
    PARTNER + "/backends",
    RegisterBackendRequest,
    BackendReply,
    _admin(),
    "Register a back-end system",
    201,
)
LIST_BACKENDS = _op(
    "backend_list",
    "GET",
    PARTNER + "/backends",
    ListBackendsRequest,
    BackendList,
    _PARTNER_READ,
    "List a partner's back-ends (no secrets)",
)
UPDATE_BACKEND = _op(
    "backend_update",
    "PATCH",
    PARTNER + "/backends/{backend}",
    UpdateBackendRequest,
    BackendReply,
    _admin(),
    "Change a back-end's address or description (the egress guard checks the new address)",
)
ROTATE_CREDENTIALS = _op(
    "backend_credentials",
    "PUT",
    PARTNER + "/backends/{backend}/credentials",
    RotateCredentialsRequest,
    BackendReply,
    _admin(),
    "Replace (rotate) a back-end's credentials",
)
DECLARE_OPERATION = _op(
    "operation_declare",
    "POST",
    PARTNER + "/backends/{backend}/operations",
    DeclareOperationRequest,
    OperationReply,
    _admin(),
    "Declare an operation on a back-end",
    201,
)
CATALOGUE = _op(
    "catalogue",
    "GET",
    ECO + "/catalogue",
    CatalogueRequest,
    CatalogueReply,
    _READ,
    "The operations the caller may see, with those granted to it across an alliance",
)
GET_OPERATION = _op(
    "operation_get",
    "GET",
    ECO + "/operations/{operation}",
    GetOperationRequest,
    OperationReply,
    _READ,
    "One operation of the catalogue",
)
CREATE_GRANT = _op(
    "grant_create",
    "POST",
    ECO + "/operations/{operation}/grants",
    CreateGrantRequest,
    GrantReply,
    _ADMIN_ANY,
    "Grant an operation to a partner, the whole ecosystem or a partner of an allied one",
    201,
)
LIST_GRANTS = _op(
    "grant_list",
    "GET",
    ECO + "/operations/{operation}/grants",
    ListGrantsRequest,
    GrantList,
    _ADMIN_ANY,
    "Grants of an operation (its owner)",
)
REVOKE_GRANT = _op(
    "grant_revoke",
    "DELETE",
    ECO + "/operations/{operation}/grants/{grant}",
    RevokeGrantRequest,
    GrantReply,
    _ADMIN_ANY,
    "Revoke a grant, at once",
)
INVOKE = _op(
    "invoke",
    "POST",
    ECO + "/operations/{operation}/invoke",
    InvokeRequest,
    InvokeReply,
    _INVOKE,
    "Invoke a granted operation on its owner's back-end",
)
AUDIT = _op(
    "audit",
    "GET",
    ECO + "/audit",
    AuditRequest,
    AuditList,
    _READ,
    "Invocation records where the caller's partner is caller or owner (calls across too)",
)
CALL_TIMELINE = _op(
    "call_timeline",
    "GET",
    ECO + "/stats/connector-calls",
    TimeSeriesQuery,
    TimeSeries,
    _READ,
    "Invocations and failed ones per day or week where the caller's partner is caller or owner",
)
DELIVERY_TIMELINE = _op(
    "delivery_timeline",
    "GET",
    ECO + "/stats/webhook-deliveries",
    TimeSeriesQuery,
    TimeSeries,
    _READ,
    "Outbound webhook deliveries by status per day or week, to the caller's partner",
)
GET_ALLOWLIST = _op(
    "allowlist_get",
    "GET",
    ECO + "/egress-allowlist",
    AllowlistRequest,
    AllowlistReply,
    _OPERATOR,
    "Internal networks back-ends may live in",
)
SET_ALLOWLIST = _op(
    "allowlist_set",
    "PUT",
    ECO + "/egress-allowlist",
    SetAllowlistRequest,
    AllowlistReply,
    _OPERATOR,
    "Allow back-ends on internal networks (SSRF guard)",
)
CREATE_INBOUND = _op(
    "inbound_create",
    "POST",
    PARTNER + "/webhooks/inbound",
    CreateInboundRequest,
    InboundReply,
    _admin(),
    "Create an inbound webhook endpoint (its secret is shown once)",
    201,
)
RECEIVE_WEBHOOK = _op(
    "inbound_receive",
    "POST",
    PARTNER + "/webhooks/inbound/{endpoint}/messages",
    ReceiveWebhookRequest,
    ReceiveWebhookReply,
    _PARTNER_INVOKE,
    "A back-end pushes a Standard Webhooks message into the mesh",
    202,
)
CREATE_EVENT_GRANT = _op(
    "event_grant_create",
    "POST",
    PARTNER + "/webhooks/event-grants",
    CreateEventGrantRequest,
    EventGrantReply,
    _admin(),
    "Let a partner (or everyone) subscribe to one of your event types",
    201,
)
REVOKE_EVENT_GRANT = _op(
    "event_grant_revoke",
    "DELETE",
    PARTNER + "/webhooks/event-grants/{grant}",
    RevokeEventGrantRequest,
    EventGrantReply,
    _admin(),
    "Revoke an event grant",
)
LIST_EVENT_GRANTS = _op(
    "event_grant_list",
    "GET",
    PARTNER + "/webhooks/event-grants",
    ListBackendsRequest,
    EventGrantList,
    _admin(),
    "The grants on your event types, revoked ones included",
)
CREATE_SUBSCRIPTION = _op(
    "subscription_create",
    "POST",
    PARTNER + "/webhooks/subscriptions",
    CreateSubscriptionRequest,
    SubscriptionReply,
    _admin(),
    "Subscribe a URL to granted event types (secret shown once)",
    201,
)
LIST_SUBSCRIPTIONS = _op(
    "subscription_list",
    "GET",
    PARTNER + "/webhooks/subscriptions",
    ListBackendsRequest,
    SubscriptionList,
    _PARTNER_READ,
    "A partner's webhook subscriptions",
)
DELETE_SUBSCRIPTION = _op(
    "subscription_delete",
    "DELETE",
    PARTNER + "/webhooks/subscriptions/{subscription}",
    SubscriptionRef,
    Deleted,
    _admin(),
    "Stop a subscription",
)
LIST_DELIVERIES = _op(
    "delivery_list",
    "GET",
    PARTNER + "/webhooks/subscriptions/{subscription}/deliveries",
    SubscriptionRef,
    DeliveryList,
    _PARTNER_READ,
    "A subscription's delivery log",
)
REPLAY_DELIVERY = _op(
    "delivery_replay",
    "POST",
    PARTNER + "/webhooks/deliveries/{delivery}/replay",
    ReplayRequest,
    DeliveryReply,
    _admin(),
    "Deliver a webhook again (same webhook-id)",
    202,
)
START_FLOW = _op(
    "flow_start",
    "POST",
    ECO + "/flows",
    StartFlowRequest,
    FlowReply,
    _INVOKE,
    "Start a durable flow across partners' operations",
    202,
)
GET_FLOW = _op(
    "flow_get",
    "GET",
    ECO + "/flows/{flow}",
    FlowRef,
    FlowReply,
    _READ,
    "A flow's state (its owner's partner and operators)",
)
LIST_FLOWS = _op(
    "flow_list",
    "GET",
    ECO + "/flows",
    ListFlowsRequest,
    FlowList,
    _READ,
    "Flows of the caller's partner",
)

OPERATIONS: tuple[Operation, ...] = (
    REGISTER_BACKEND,
    LIST_BACKENDS,
    ROTATE_CREDENTIALS,
    UPDATE_BACKEND,
    DECLARE_OPERATION,
    CATALOGUE,
    GET_OPERATION,
    CREATE_GRANT,
    LIST_GRANTS,
    REVOKE_GRANT,
    INVOKE,
    AUDIT,
    CALL_TIMELINE,
    DELIVERY_TIMELINE,
    GET_ALLOWLIST,
    SET_ALLOWLIST,
    CREATE_INBOUND,
    RECEIVE_WEBHOOK,
    CREATE_EVENT_GRANT,
    REVOKE_EVENT_GRANT,
    LIST_EVENT_GRANTS,
    CREATE_SUBSCRIPTION,
    LIST_SUBSCRIPTIONS,
    DELETE_SUBSCRIPTION,
    LIST_DELIVERIES,
    REPLAY_DELIVERY,
    START_FLOW,
    GET_FLOW,
    LIST_FLOWS,
)

EVENTS: tuple[type[EventBase], ...] = (PartnerEventReceived, FlowFinished, GrantChanged)
