"""Connector contracts: Standard Webhooks in (from back-ends) and out (to subscribers)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.envelope import EventBase
from contracts.timestamps import Timestamp
from contracts.v1.connector.backends import EVENT_TYPE, SLUG

# --- inbound webhooks ------------------------------------------------------------------------


class CreateInboundRequest(BaseModel):
    eco: str
    partner: str
    name: str = Field(pattern=SLUG)


class InboundReply(BaseModel):
    partner: str
    name: str
    secret: str | None = Field(default=None, description="whsec_… shown once, at creation")
    created_at: Timestamp


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
    created_at: Timestamp
    revoked_at: Timestamp | None = None


class EventGrantList(BaseModel):
    items: list[EventGrantReply]


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
    created_at: Timestamp


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
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None
    created_at: Timestamp


class DeliveryList(BaseModel):
    items: list[DeliveryReply]


class ReplayRequest(BaseModel):
    eco: str
    partner: str
    delivery: str


class Deleted(BaseModel):
    ok: bool = True


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
