"""Inbound webhooks: back-ends push Standard Webhooks messages, which become mesh events."""

from __future__ import annotations

import hashlib
import re
import uuid

from sqlalchemy.exc import IntegrityError

from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh import safejson
from mesh.errors import MeshError, bad_request, conflict, not_found
from services.connector import repository as repo
from services.connector import signing
from services.connector import webhook_repository as wrepo
from services.connector.models import InboundEndpoint, InboundSeen
from services.connector.service import Connector


async def create_endpoint(
    cx: Connector, claims: Claims, req: c.CreateInboundRequest
) -> c.InboundReply:
    secret = signing.new_secret()
    async with cx.db.transaction() as s:
        if await wrepo.get_inbound(s, req.eco, req.partner, req.name):
            raise conflict("an inbound endpoint with this name exists")
        secret_id = uuid.uuid4().hex
        await repo.put_secret(s, secret_id, cx.vault.seal(secret_id, secret))
        row = InboundEndpoint(
            id=uuid.uuid4().hex,
            eco=req.eco,
            partner=req.partner,
            name=req.name,
            secret_id=secret_id,
            created_at=repo.now(),
        )
        await repo.add(s, row)
    return c.InboundReply(
        partner=row.partner, name=row.name, secret=secret, created_at=row.created_at
    )


def _payload(body: str) -> tuple[str, object]:
    try:
        # Bounded in depth, with room for the event envelope it travels in.
        doc = safejson.loads(body, safejson.RELAY_DEPTH)
    except ValueError:
        raise bad_request("the webhook body is not JSON") from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if not isinstance(kind, str) or not re.match(c.EVENT_TYPE, kind):
        raise bad_request('the webhook body needs a "type" like order.shipped')
    return kind, doc.get("data")


async def receive(
    cx: Connector, claims: Claims, req: c.ReceiveWebhookRequest
) -> c.ReceiveWebhookReply:
    async with cx.db.transaction() as s:
        endpoint = await wrepo.get_inbound(s, req.eco, req.partner, req.endpoint)
        if endpoint is None:
            raise not_found("inbound endpoint")
        secret = cx.vault.open(
            endpoint.secret_id, await repo.get_secret(s, endpoint.secret_id) or ""
        )
    try:
        signing.verify(
            secret,
            req.webhook_id,
            req.webhook_timestamp,
            req.webhook_signature,
            req.body,
            cx.settings.webhook_tolerance_s,
        )
    except signing.SignatureError as exc:
        raise MeshError(ErrorCode.UNAUTHENTICATED, f"webhook rejected: {exc}") from None
    kind, data = _payload(req.body)
    try:
        return await _accept(cx, endpoint, req.webhook_id, kind, data)
    except IntegrityError:  # the same id accepted concurrently
        return c.ReceiveWebhookReply(webhook_id=req.webhook_id, event_type=kind, duplicate=True)


async def _accept(
    cx: Connector, endpoint: InboundEndpoint, webhook_id: str, kind: str, data: object
) -> c.ReceiveWebhookReply:
    async with cx.db.transaction() as s:
        if await wrepo.seen(s, endpoint.id, webhook_id):
            return c.ReceiveWebhookReply(webhook_id=webhook_id, event_type=kind, duplicate=True)
        await repo.add(
            s,
            InboundSeen(
                endpoint_id=endpoint.id,
                webhook_id=webhook_id,
                event_type=kind,
                received_at=repo.now(),
            ),
        )
        event = c.PartnerEventReceived(
            id=hashlib.sha256(f"{endpoint.id}:{webhook_id}".encode()).hexdigest(),
            ecosystem=endpoint.eco,
            partner=endpoint.partner,
            subject=kind,
            data=c.PartnerEventData(
                partner=endpoint.partner,
                endpoint=endpoint.name,
                webhook_id=webhook_id,
                event_type=kind,
                payload=data,
            ),
        )
        await cx.rt.outbox.add(s, event)
    return c.ReceiveWebhookReply(webhook_id=webhook_id, event_type=kind, duplicate=False)
