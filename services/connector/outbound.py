"""Outbound webhooks: event grants, subscriptions, signed deliveries with backoff, replay."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims
from contracts.envelope import EventBase
from contracts.v1 import connector as c
from mesh.errors import bad_request, forbidden, not_found
from services.connector import repository as repo
from services.connector import signing, ssrf
from services.connector import webhook_repository as wrepo
from services.connector.invoker import InvokeFailure
from services.connector.models import Delivery, Grant, Subscription
from services.connector.service import Connector

log = logging.getLogger(__name__)


def _event_grant(g: Grant) -> c.EventGrantReply:
    return c.EventGrantReply(
        id=g.id,
        partner=g.owner_partner,
        event_type=g.resource,
        grantee=g.grantee,
        created_at=g.created_at,
        revoked_at=g.revoked_at,
    )


def _subscription(sub: Subscription, secret: str | None = None) -> c.SubscriptionReply:
    return c.SubscriptionReply(
        id=sub.id,
        partner=sub.partner,
        source_partner=sub.source_partner,
        event_types=sub.event_types,
        url=sub.url,
        active=sub.active,
        secret=secret,
        created_at=sub.created_at,
    )


def _delivery(d: Delivery) -> c.DeliveryReply:
    return c.DeliveryReply(
        id=d.id,
        subscription=d.subscription_id,
        webhook_id=d.webhook_id,
        event_type=d.event_type,
        status=d.status,  # type: ignore[arg-type]
        attempts=d.attempts,
        last_status=d.last_status,
        last_error=d.last_error,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
    )


async def create_event_grant(
    cx: Connector, claims: Claims, req: c.CreateEventGrantRequest
) -> c.EventGrantReply:
    if req.grantee == req.partner:
        raise bad_request("the owner needs no grant")
    async with cx.db.transaction() as s:
        row = Grant(
            id=uuid.uuid4().hex,
            eco=req.eco,
            kind="event",
            resource=req.event_type,
            owner_partner=req.partner,
            grantee=req.grantee,
            rate_limit_per_minute=None,
            response_fields=None,
            created_at=repo.now(),
            revoked_at=None,
        )
        await repo.add(s, row)
        return _event_grant(row)


async def revoke_event_grant(
    cx: Connector, claims: Claims, req: c.RevokeEventGrantRequest
) -> c.EventGrantReply:
    async with cx.db.transaction() as s:
        row = await repo.get_grant(s, req.eco, req.grant)
        if row is None or row.kind != "event" or row.owner_partner != req.partner:
            raise not_found("event grant")
        if row.revoked_at is None:
            await repo.revoke_grant(s, row)
        return _event_grant(row)


async def list_event_grants(
    cx: Connector, claims: Claims, req: c.ListBackendsRequest
) -> c.EventGrantList:
    async with cx.db.transaction() as s:
        rows = await repo.grants_owned(s, req.eco, "event", req.partner)
        return c.EventGrantList(items=[_event_grant(r) for r in rows])


async def _granted(s: AsyncSession, eco: str, source: str, subscriber: str, kind: str) -> bool:
    if source == subscriber:
        return True
    grants = await repo.active_grants(s, eco, "event", subscriber, kind)
    return any(g.owner_partner == source for g in grants)


async def create_subscription(
    cx: Connector, claims: Claims, req: c.CreateSubscriptionRequest
) -> c.SubscriptionReply:
    secret = signing.new_secret()
    async with cx.db.transaction() as s:
        for kind in req.event_types:
            if not await _granted(s, req.eco, req.source_partner, req.partner, kind):
                raise forbidden(f"{req.source_partner} has not granted you {kind}")
        allowed = cx.invoker.set_allowed(req.eco, await repo.allowlist(s, req.eco))
        try:
            await ssrf.check_url(req.url, allowed)
        except ssrf.EgressRefused as exc:
            raise bad_request(f"the webhook URL is refused: {exc}") from None
        secret_id = uuid.uuid4().hex
        await repo.put_secret(s, secret_id, cx.vault.seal(secret_id, secret))
        row = Subscription(
            id=uuid.uuid4().hex,
            eco=req.eco,
            partner=req.partner,
            source_partner=req.source_partner,
            event_types=req.event_types,
            url=req.url,
            secret_id=secret_id,
            active=True,
            created_at=repo.now(),
        )
        await repo.add(s, row)
        return _subscription(row, secret)


async def _own_subscription(s: AsyncSession, eco: str, partner: str, sub_id: str) -> Subscription:
    sub = await wrepo.get_subscription(s, eco, sub_id)
    if sub is None or sub.partner != partner:
        raise not_found("subscription")
    return sub


async def list_subscriptions(
    cx: Connector, claims: Claims, req: c.ListBackendsRequest
) -> c.SubscriptionList:
    async with cx.db.transaction() as s:
        rows = await wrepo.list_subscriptions(s, req.eco, req.partner)
        return c.SubscriptionList(items=[_subscription(r) for r in rows])


async def delete_subscription(cx: Connector, claims: Claims, req: c.SubscriptionRef) -> c.Deleted:
    async with cx.db.transaction() as s:
        sub = await _own_subscription(s, req.eco, req.partner, req.subscription)
        sub.active = False
    return c.Deleted()


async def list_deliveries(cx: Connector, claims: Claims, req: c.SubscriptionRef) -> c.DeliveryList:
    async with cx.db.transaction() as s:
        sub = await _own_subscription(s, req.eco, req.partner, req.subscription)
        return c.DeliveryList(items=[_delivery(d) for d in await wrepo.list_deliveries(s, sub.id)])


async def replay(cx: Connector, claims: Claims, req: c.ReplayRequest) -> c.DeliveryReply:
    """Deliver again with the same webhook-id (receivers de-duplicate on it)."""
    async with cx.db.transaction() as s:
        d = await wrepo.get_delivery(s, req.eco, req.delivery)
        if d is None:
            raise not_found("delivery")
        await _own_subscription(s, req.eco, req.partner, d.subscription_id)
        d.status, d.attempts, d.next_attempt_at = "pending", 0, repo.now()
        reply = _delivery(d)
    cx.delivery_wake.set()
    return reply


async def fan_out(cx: Connector, s: AsyncSession, event: EventBase) -> None:
    """A partner event: one delivery per subscription that is (still) granted it."""
    if not isinstance(event, c.PartnerEventReceived):
        return
    data = event.data
    body = json.dumps(
        {"type": data.event_type, "timestamp": event.time.isoformat(), "data": data.payload},
        separators=(",", ":"),
    )
    for sub in await wrepo.active_subscriptions(s, event.ecosystem, data.partner):
        if data.event_type not in sub.event_types or event.time < _aware(sub.created_at):
            continue  # a subscription gets the events that happen after it was made
        if not await _granted(s, event.ecosystem, data.partner, sub.partner, data.event_type):
            continue
        if await wrepo.find_delivery(s, sub.id, event.id):
            continue
        await repo.add(
            s,
            Delivery(
                id=uuid.uuid4().hex,
                eco=event.ecosystem,
                subscription_id=sub.id,
                webhook_id=event.id,
                event_type=data.event_type,
                body=body,
                status="pending",
                attempts=0,
                next_attempt_at=repo.now(),
                created_at=repo.now(),
            ),
        )
    cx.wake_deliveries_after_commit()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def backoff(cx: Connector, attempts: int) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempts-1)."""
    ceiling = min(
        cx.settings.delivery_backoff_max_s, cx.settings.delivery_backoff_s * 2 ** (attempts - 1)
    )
    return random.uniform(ceiling / 2, ceiling)


async def deliver_due(cx: Connector, limit: int = 50) -> int:
    lease = timedelta(seconds=cx.settings.delivery_timeout_s * 2)
    async with cx.db.transaction() as s:
        claimed = []
        for d in await wrepo.due_deliveries(s, repo.now(), limit):
            if await wrepo.lease_delivery(s, d, repo.now() + lease):
                sub = await wrepo.get_subscription(s, d.eco, d.subscription_id)
                if sub is None:
                    continue
                cx.invoker.set_allowed(d.eco, await repo.allowlist(s, d.eco))
                secret = cx.vault.open(sub.secret_id, await repo.get_secret(s, sub.secret_id) or "")
                claimed.append((d.id, d.eco, d.webhook_id, d.body, sub.url, secret))
    await asyncio.gather(*(_attempt(cx, *item) for item in claimed))
    return len(claimed)


async def _attempt(
    cx: Connector, delivery_id: str, eco: str, webhook_id: str, body: str, url: str, secret: str
) -> None:
    status: int | None = None
    error: str | None = None
    try:
        status = await cx.invoker.post_webhook(
            eco, url, body, signing.headers(secret, webhook_id, body)
        )
        if not 200 <= status < 300:
            error = f"the receiver answered {status}"
    except InvokeFailure as exc:
        error = exc.detail
    async with cx.db.transaction() as s:
        d = await wrepo.get_delivery(s, eco, delivery_id)
        if d is None:
            return
        d.attempts += 1
        d.last_status, d.last_error = status, error
        if error is None:
            d.status, d.delivered_at = "delivered", repo.now()
        elif d.attempts >= cx.settings.delivery_max_attempts:
            d.status = "dead"
            log.warning("webhook dead-lettered", extra={"delivery": d.id, "error": error})
        else:
            d.next_attempt_at = repo.now() + timedelta(seconds=backoff(cx, d.attempts))


async def deliver_forever(cx: Connector) -> None:
    while True:
        cx.delivery_wake.clear()
        try:
            busy = await deliver_due(cx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery round failed")
            busy = 0
        if not busy:
            try:
                await asyncio.wait_for(cx.delivery_wake.wait(), cx.settings.delivery_poll_s)
            except TimeoutError:
                pass
