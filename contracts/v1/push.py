"""Web Push of notifications (RFC 8030, encrypted per RFC 8291, VAPID per RFC 8292): a
person's push subscriptions (one per browser) and the kinds they opted in to.

The collaboration service owns them beside the notifications it records: each recorded
notification of a kind its recipient opted in to is pushed to each of their subscriptions.
A subscription always belongs to the caller (the token's subject), never to a person named
in a request; another person's subscription answers 404.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from contracts.claims import Scope
from contracts.policy import Operation, Policy
from contracts.subjects import request_subject
from contracts.timestamps import Timestamp
from contracts.v1.collaboration_models import EcoRequest, Ref

PUSH_KINDS: tuple[str, ...] = ("introduction", "mention", "reply")
"""The kinds of notification that may be pushed (each opt-in, off until turned on)."""

PushKind = Literal["introduction", "mention", "reply"]
# An RFC 8030 push resource: an https URL the browser's push service handed out.
Endpoint = Annotated[str, StringConstraints(min_length=12, max_length=2000, pattern=r"^https?://")]
# base64url (unpadded or padded) of an uncompressed P-256 point (65 bytes) or a 16-byte secret
B64Key = Annotated[
    str, StringConstraints(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_=-]+$")
]


class PushKeys(BaseModel):
    p256dh: B64Key = Field(description="the browser's P-256 public key (base64url)")
    auth: B64Key = Field(description="the 16-byte authentication secret (base64url)")


class SubscribePush(EcoRequest):
    """A browser's ``PushSubscription.toJSON()``."""

    endpoint: Endpoint
    keys: PushKeys


class PushSubscriptionRequest(EcoRequest):
    subscription: Ref


class PushSubscriptionView(BaseModel):
    id: str
    endpoint_origin: str = Field(description="the push service's origin (the URL is a secret)")
    created_at: Timestamp


class PushSettings(BaseModel):
    public_key: str = Field(description="the deployment's VAPID public key (base64url, P-256)")
    kinds: dict[PushKind, bool]
    subscriptions: list[PushSubscriptionView]


class SetPushKinds(EcoRequest):
    kinds: dict[PushKind, bool] = Field(
        max_length=len(PUSH_KINDS), description="the kinds to push (true) or not (false)"
    )


class PushMessage(BaseModel):
    """What a push carries (encrypted for the browser): enough to show and open it."""

    title: str
    body: str
    url: str
    kind: PushKind
    notification: int


_ECO = "/v1/ecosystems/{eco}/notifications/push"


def _op(
    name: str,
    method: str,
    path: str,
    request: type[BaseModel],
    reply: type[BaseModel],
    summary: str,
    status: int = 200,
) -> Operation:
    return Operation(
        name=name,
        subject=request_subject("collaboration", name.removeprefix("collaboration.")),
        method=method,
        path=path,
        request=request,
        reply=reply,
        policy=Policy(scope=Scope.FORUM_READ),
        summary=summary,
        status=status,
        tags=("collaboration", "push"),
    )


PUSH_SETTINGS = _op(
    "collaboration.push.settings", "GET", _ECO, EcoRequest, PushSettings,
    "The VAPID public key, the kinds I opted in to and my push subscriptions",
)  # fmt: skip
SET_PUSH_KINDS = _op(
    "collaboration.push.set_kinds", "PUT", _ECO + "/kinds", SetPushKinds, PushSettings,
    "Opt in to (or out of) pushes of kinds of notification",
)  # fmt: skip
SUBSCRIBE_PUSH = _op(
    "collaboration.push.subscribe", "POST", _ECO + "/subscriptions", SubscribePush,
    PushSubscriptionView, "Register this browser's push subscription for me", status=201,
)  # fmt: skip
UNSUBSCRIBE_PUSH = _op(
    "collaboration.push.unsubscribe", "DELETE", _ECO + "/subscriptions/{subscription}",
    PushSubscriptionRequest, PushSettings, "Remove one of my push subscriptions",
)  # fmt: skip

OPERATIONS: tuple[Operation, ...] = (
    PUSH_SETTINGS,
    SET_PUSH_KINDS,
    SUBSCRIBE_PUSH,
    UNSUBSCRIBE_PUSH,
)
