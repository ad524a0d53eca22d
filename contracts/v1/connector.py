"""Contracts of the connector service: operations (with their policies) and events.

A partner registers back-end systems and declares operations on them, grants
operations (and its webhook event types) to named partners or the whole
ecosystem, and others invoke them through the connector, which holds the
credentials in its vault. Inbound webhooks from back-ends become events;
outbound webhooks deliver granted events to subscribers; flows chain several
partners' operations durably.

Identifiers: a back-end is named per partner; an operation is named
``<partner>.<name>`` across the ecosystem (e.g. ``fabrikam.forecast``).
Secrets (API keys, client secrets, private keys, webhook signing secrets) are
write-only: no reply carries them, except a webhook signing secret the
connector generated, shown once when it is created.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.claims import Role, Scope
from contracts.envelope import EventBase
from contracts.policy import Operation, Policy
from contracts.subjects import request_subject

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
OPERATION_ID = r"^[a-z0-9][a-z0-9-]{0,62}\.[a-z0-9][a-z0-9-]{0,62}$"
EVENT_TYPE = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
ECO = "/v1/ecosystems/{eco}"
PARTNER = ECO + "/partners/{partner}"
ADMINS = frozenset({Role.PARTNER_ADMIN, Role.OPERATOR})


def _op(
    name: str, method: str, path: str, request: type[BaseModel], reply: type[BaseModel],
    policy: Policy, summary: str, status: int = 200,
) -> Operation:
    return Operation(
        name=f"connector.{name}", subject=request_subject("connector", name), method=method,
        path=path, request=request, reply=reply, policy=policy, summary=summary, status=status,
        tags=("connector",),
    )


def _admin(partner_bound: bool = True) -> Policy:
    return Policy(
        scope=Scope.CONNECTOR_ADMIN, roles=ADMINS, partner_param="partner" if partner_bound else None
    )


# --- back-ends and their credentials ---------------------------------------------------------


class AuthNone(BaseModel):
    kind: Literal["none"] = "none"


class AuthApiKey(BaseModel):
    kind: Literal["api_key"] = "api_key"
    header: str = Field(default="X-Api-Key", pattern=r"^[A-Za-z0-9-]{1,64}$")
    api_key: str = Field(min_length=1, max_length=4096, description="write-only")


class AuthOAuth2(BaseModel):
    kind: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(max_length=2000)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=4096, description="write-only")
    scope: str = Field(default="", max_length=1000)


class AuthMtls(BaseModel):
    kind: Literal["mtls"] = "mtls"
    client_cert_pem: str = Field(min_length=1, max_length=20000)
    client_key_pem: str = Field(min_length=1, max_length=20000, description="write-only")


AuthConfig = AuthNone | AuthApiKey | AuthOAuth2 | AuthMtls


class BackendFields(BaseModel):
    base_url: str = Field(max_length=2000, description="http(s) URL the operations' paths join")
    auth: AuthConfig = Field(default_factory=AuthNone, discriminator="kind")
    server_ca_pem: str | None = Field(
        default=None, max_length=20000, description="trust anchor for an https back-end"
    )
    description: str = Field(default="", max_length=2000)


class RegisterBackendRequest(BackendFields):
    eco: str
    partner: str
    name: str = Field(pattern=SLUG)


class ListBackendsRequest(BaseModel):
    eco: str
    partner: str


class RotateCredentialsRequest(BaseModel):
    eco: str
    partner: str
    backend: str
    auth: AuthConfig = Field(discriminator="kind")


class BackendReply(BaseModel):
    """A back-end as its owners see it: never its secrets."""

    partner: str
    name: str
    base_url: str
    auth_kind: str
    credential_version: int
    has_server_ca: bool
    description: str
    created_at: datetime


class BackendList(BaseModel):
    items: list[BackendReply]


# --- operations and the catalogue ------------------------------------------------------------


class DeclareOperationRequest(BaseModel):
    eco: str
    partner: str
    backend: str
    name: str = Field(pattern=SLUG)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(
        max_length=500, pattern=r"^/", description="path template, e.g. /orders/{order_id}"
    )
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] = Field(default_factory=dict)
    visibility: Literal["private", "ecosystem"] = Field(
        default="private", description="ecosystem: listed for all; private: owner and grantees"
    )
    description: str = Field(default="", max_length=2000)
    timeout_s: float | None = Field(default=None, gt=0, le=120)


class OperationReply(BaseModel):
    id: str = Field(description="<partner>.<name>")
    partner: str
    backend: str
    name: str
    method: str
    path: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    visibility: str
    description: str
    granted: bool = Field(description="whether the caller may invoke it")


class CatalogueRequest(BaseModel):
    eco: str


class CatalogueReply(BaseModel):
    items: list[OperationReply]


class GetOperationRequest(BaseModel):
    eco: str
    operation: str


# --- grants ----------------------------------------------------------------------------------


class GrantFields(BaseModel):
    grantee: str | None = Field(
        default=None, description="partner granted; null grants the whole ecosystem"
    )
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    response_fields: list[str] | None = Field(
        default=None, description="dotted paths kept in responses; null keeps all"
    )


class CreateGrantRequest(GrantFields):
    eco: str
    operation: str


class ListGrantsRequest(BaseModel):
    eco: str
    operation: str


class RevokeGrantRequest(BaseModel):
    eco: str
    operation: str
    grant: str


class GrantReply(GrantFields):
    id: str
    operation: str
    created_at: datetime
    revoked_at: datetime | None = None


class GrantList(BaseModel):
    items: list[GrantReply]


# --- invocation and audit --------------------------------------------------------------------


class InvokeRequest(BaseModel):
    eco: str
    operation: str
    input: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(
        default=None, max_length=200, description="Idempotency-Key: a repeat replays the result"
    )


class InvokeReply(BaseModel):
    operation: str
    status: int = Field(description="the back-end's HTTP status")
    output: Any
    attempts: int
    replayed: bool = False
    audit_id: str


class AuditRequest(BaseModel):
    eco: str
    operation: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class AuditRecord(BaseModel):
    id: str
    operation: str
    owner_partner: str
    caller_partner: str | None
    caller: str
    outcome: str
    status: int | None
    latency_ms: float
    attempts: int
    flow: str | None
    at: datetime


class AuditList(BaseModel):
    items: list[AuditRecord]


# --- egress allow-list (SSRF) ----------------------------------------------------------------


class AllowlistRequest(BaseModel):
    eco: str


class SetAllowlistRequest(BaseModel):
    eco: str
    entries: list[str] = Field(
        default_factory=list, max_length=100,
        description="CIDRs or addresses of internal networks back-ends may live in",
    )


class AllowlistReply(BaseModel):
    entries: list[str]


# --- inbound webhooks ------------------------------------------------------------------------


class CreateInboundRequest(BaseModel):
    eco: str
    partner: str
    name: str = Field(pattern=SLUG)


class InboundReply(BaseModel):
    partner: str
    name: str
    secret: str | None = Field(default=None, description="whsec_… shown once, at creation")
    created_at: datetime


class ReceiveWebhookRequest(BaseModel):
    """A Standard Webhooks message, forwarded as fields.

    A back-end posts ``{"webhook_id": <webhook-id header>, "webhook_timestamp":
    <webhook-timestamp>, "webhook_signature": <webhook-signature>, "body": <the
    exact raw body>}`` with its partner's client-credentials token.
    """

    eco: str
    partner: str
    endpoint: str
    webhook_id: str = Field(min_length=1, max_length=200)
    webhook_timestamp: str = Field(min_length=1, max_length=20)
    webhook_signature: str = Field(min_length=1, max_length=4000)
    body: str = Field(max_length=1_000_000, description="the raw body exactly as signed")


class ReceiveWebhookReply(BaseModel):
    webhook_id: str
    event_type: str
    duplicate: bool


# --- outbound webhooks -----------------------------------------------------------------------


class CreateEventGrantRequest(BaseModel):
    eco: str
    partner: str
    event_type: str = Field(pattern=EVENT_TYPE)
    grantee: str | None = None


class RevokeEventGrantRequest(BaseModel):
    eco: str
    partner: str
    grant: str


class EventGrantReply(BaseModel):
    id: str
    partner: str
    event_type: str
    grantee: str | None
    created_at: datetime
    revoked_at: datetime | None = None


class CreateSubscriptionRequest(BaseModel):
    eco: str
    partner: str
    source_partner: str
    event_types: list[str] = Field(min_length=1, max_length=50)
    url: str = Field(max_length=2000)


class SubscriptionRef(BaseModel):
    eco: str
    partner: str
    subscription: str


class SubscriptionReply(BaseModel):
    id: str
    partner: str
    source_partner: str
    event_types: list[str]
    url: str
    active: bool
    secret: str | None = Field(default=None, description="whsec_… shown once, at creation")
    created_at: datetime


class SubscriptionList(BaseModel):
    items: list[SubscriptionReply]


class DeliveryReply(BaseModel):
    id: str
    subscription: str
    webhook_id: str
    event_type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryList(BaseModel):
    items: list[DeliveryReply]


class ReplayRequest(BaseModel):
    eco: str
    partner: str
    delivery: str


class Deleted(BaseModel):
    ok: bool = True


# --- flows -----------------------------------------------------------------------------------


class FlowCall(BaseModel):
    operation: str = Field(pattern=OPERATION_ID)
    input: dict[str, Any] = Field(
        default_factory=dict,
        description='values; a string "$input.a.b" or "$steps.<step>.output.x" is a reference',
    )


class FlowStep(FlowCall):
    name: str = Field(pattern=SLUG)
    compensate: FlowCall | None = None


class StartFlowRequest(BaseModel):
    eco: str
    name: str = Field(max_length=200)
    input: dict[str, Any] = Field(default_factory=dict)
    steps: list[FlowStep] = Field(min_length=1, max_length=50)


class FlowRef(BaseModel):
    eco: str
    flow: str


class ListFlowsRequest(BaseModel):
    eco: str


class FlowStepState(BaseModel):
    name: str
    status: Literal["pending", "done", "failed", "compensated", "compensation_failed"]
    output: Any = None
    error: str | None = None


class FlowReply(BaseModel):
    id: str
    name: str
    owner_partner: str | None
    status: Literal["running", "compensating", "completed", "compensated", "failed"]
    steps: list[FlowStepState]
    error: str | None
    created_at: datetime
    updated_at: datetime


class FlowList(BaseModel):
    items: list[FlowReply]


# --- operations ------------------------------------------------------------------------------

_READ = Policy(scope=Scope.CONNECTOR_READ)
_INVOKE = Policy(scope=Scope.CONNECTOR_INVOKE)
_ADMIN_ANY = _admin(partner_bound=False)
_OPERATOR = Policy(scope=Scope.ADMIN, roles=frozenset({Role.OPERATOR}))
_PARTNER_READ = Policy(scope=Scope.CONNECTOR_READ, partner_param="partner")
_PARTNER_INVOKE = Policy(scope=Scope.CONNECTOR_INVOKE, partner_param="partner")

REGISTER_BACKEND = _op("backend_register", "POST", PARTNER + "/backends", RegisterBackendRequest,
                       BackendReply, _admin(), "Register a back-end system", 201)
LIST_BACKENDS = _op("backend_list", "GET", PARTNER + "/backends", ListBackendsRequest,
                    BackendList, _PARTNER_READ, "List a partner's back-ends (no secrets)")
ROTATE_CREDENTIALS = _op("backend_credentials", "PUT",
                         PARTNER + "/backends/{backend}/credentials", RotateCredentialsRequest,
                         BackendReply, _admin(), "Replace (rotate) a back-end's credentials")
DECLARE_OPERATION = _op("operation_declare", "POST", PARTNER + "/backends/{backend}/operations",
                        DeclareOperationRequest, OperationReply, _admin(),
                        "Declare an operation on a back-end", 201)
CATALOGUE = _op("catalogue", "GET", ECO + "/catalogue", CatalogueRequest, CatalogueReply, _READ,
                "The operations the caller may see")
GET_OPERATION = _op("operation_get", "GET", ECO + "/operations/{operation}", GetOperationRequest,
                    OperationReply, _READ, "One operation of the catalogue")
CREATE_GRANT = _op("grant_create", "POST", ECO + "/operations/{operation}/grants",
                   CreateGrantRequest, GrantReply, _ADMIN_ANY,
                   "Grant an operation to a partner or the whole ecosystem", 201)
LIST_GRANTS = _op("grant_list", "GET", ECO + "/operations/{operation}/grants", ListGrantsRequest,
                  GrantList, _ADMIN_ANY, "Grants of an operation (its owner)")
REVOKE_GRANT = _op("grant_revoke", "DELETE", ECO + "/operations/{operation}/grants/{grant}",
                   RevokeGrantRequest, GrantReply, _ADMIN_ANY, "Revoke a grant, at once")
INVOKE = _op("invoke", "POST", ECO + "/operations/{operation}/invoke", InvokeRequest, InvokeReply,
             _INVOKE, "Invoke a granted operation on its owner's back-end")
AUDIT = _op("audit", "GET", ECO + "/audit", AuditRequest, AuditList, _READ,
            "Invocation records where the caller's partner is caller or owner")
GET_ALLOWLIST = _op("allowlist_get", "GET", ECO + "/egress-allowlist", AllowlistRequest,
                    AllowlistReply, _OPERATOR, "Internal networks back-ends may live in")
SET_ALLOWLIST = _op("allowlist_set", "PUT", ECO + "/egress-allowlist", SetAllowlistRequest,
                    AllowlistReply, _OPERATOR, "Allow back-ends on internal networks (SSRF guard)")
CREATE_INBOUND = _op("inbound_create", "POST", PARTNER + "/webhooks/inbound",
                     CreateInboundRequest, InboundReply, _admin(),
                     "Create an inbound webhook endpoint (its secret is shown once)", 201)
RECEIVE_WEBHOOK = _op("inbound_receive", "POST",
                      PARTNER + "/webhooks/inbound/{endpoint}/messages", ReceiveWebhookRequest,
                      ReceiveWebhookReply, _PARTNER_INVOKE,
                      "A back-end pushes a Standard Webhooks message into the mesh", 202)
CREATE_EVENT_GRANT = _op("event_grant_create", "POST", PARTNER + "/webhooks/event-grants",
                         CreateEventGrantRequest, EventGrantReply, _admin(),
                         "Let a partner (or everyone) subscribe to one of your event types", 201)
REVOKE_EVENT_GRANT = _op("event_grant_revoke", "DELETE",
                         PARTNER + "/webhooks/event-grants/{grant}", RevokeEventGrantRequest,
                         EventGrantReply, _admin(), "Revoke an event grant")
CREATE_SUBSCRIPTION = _op("subscription_create", "POST", PARTNER + "/webhooks/subscriptions",
                          CreateSubscriptionRequest, SubscriptionReply, _admin(),
                          "Subscribe a URL to granted event types (secret shown once)", 201)
LIST_SUBSCRIPTIONS = _op("subscription_list", "GET", PARTNER + "/webhooks/subscriptions",
                         ListBackendsRequest, SubscriptionList, _PARTNER_READ,
                         "A partner's webhook subscriptions")
DELETE_SUBSCRIPTION = _op("subscription_delete", "DELETE",
                          PARTNER + "/webhooks/subscriptions/{subscription}", SubscriptionRef,
                          Deleted, _admin(), "Stop a subscription")
LIST_DELIVERIES = _op("delivery_list", "GET",
                      PARTNER + "/webhooks/subscriptions/{subscription}/deliveries",
                      SubscriptionRef, DeliveryList, _PARTNER_READ, "A subscription's delivery log")
REPLAY_DELIVERY = _op("delivery_replay", "POST",
                      PARTNER + "/webhooks/deliveries/{delivery}/replay", ReplayRequest,
                      DeliveryReply, _admin(), "Deliver a webhook again (same webhook-id)", 202)
START_FLOW = _op("flow_start", "POST", ECO + "/flows", StartFlowRequest, FlowReply, _INVOKE,
                 "Start a durable flow across partners' operations", 202)
GET_FLOW = _op("flow_get", "GET", ECO + "/flows/{flow}", FlowRef, FlowReply, _READ,
               "A flow's state (its owner's partner and operators)")
LIST_FLOWS = _op("flow_list", "GET", ECO + "/flows", ListFlowsRequest, FlowList, _READ,
                 "Flows of the caller's partner")

OPERATIONS: tuple[Operation, ...] = (
    REGISTER_BACKEND, LIST_BACKENDS, ROTATE_CREDENTIALS, DECLARE_OPERATION, CATALOGUE,
    GET_OPERATION, CREATE_GRANT, LIST_GRANTS, REVOKE_GRANT, INVOKE, AUDIT, GET_ALLOWLIST,
    SET_ALLOWLIST, CREATE_INBOUND, RECEIVE_WEBHOOK, CREATE_EVENT_GRANT, REVOKE_EVENT_GRANT,
    CREATE_SUBSCRIPTION, LIST_SUBSCRIPTIONS, DELETE_SUBSCRIPTION, LIST_DELIVERIES,
    REPLAY_DELIVERY, START_FLOW, GET_FLOW, LIST_FLOWS,
)

# --- events ----------------------------------------------------------------------------------


class PartnerEventData(BaseModel):
    """A verified message a partner's back-end pushed in (a Standard Webhooks payload)."""

    partner: str = Field(description="the partner whose back-end sent it")
    endpoint: str
    webhook_id: str
    event_type: str = Field(description='the payload\'s "type"')
    payload: Any = Field(description='the payload\'s "data"')


class PartnerEventReceived(EventBase):
    SOURCE: ClassVar[str] = "/services/connector"
    type: Literal["pm.v1.connector.partner_event"] = "pm.v1.connector.partner_event"
    source: str = SOURCE
    data: PartnerEventData


class FlowFinishedData(BaseModel):
    flow: str
    name: str
    owner_partner: str | None
    status: str
    error: str | None = None


class FlowFinished(EventBase):
    SOURCE: ClassVar[str] = "/services/connector"
    type: Literal["pm.v1.connector.flow_finished"] = "pm.v1.connector.flow_finished"
    source: str = SOURCE
    data: FlowFinishedData


class GrantChangedData(BaseModel):
    grant: str
    operation: str
    grantee: str | None
    revoked: bool


class GrantChanged(EventBase):
    SOURCE: ClassVar[str] = "/services/connector"
    type: Literal["pm.v1.connector.grant_changed"] = "pm.v1.connector.grant_changed"
    source: str = SOURCE
    data: GrantChangedData


EVENTS: tuple[type[EventBase], ...] = (PartnerEventReceived, FlowFinished, GrantChanged)
