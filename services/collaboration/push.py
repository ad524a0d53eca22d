"""Web Push of notifications: each person's subscriptions and opted-in kinds, and the
pushes themselves (RFC 8030, payload encrypted per RFC 8291 (aes128gcm), signed with the
deployment's VAPID key per RFC 8292, by ``pywebpush``).

A recorded notification (``NotificationAdded``, this service's own event) is read by the
``collaboration-push`` consumer: when its recipient opted in to its kind, one push per
subscription is queued, and a background worker sends them after the event's transaction,
so a slow push service never holds a database transaction. Pushes are best effort (the
notification centre is the record): a push service answering 404 or 410 means the
subscription is gone, and it is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pydantic import BaseModel
from pywebpush import WebPushException, webpush_async
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.bus import consumer
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.policy import Operation
from contracts.v1 import push as p
from contracts.v1.collaboration import NotificationAdded
from contracts.v1.collaboration_models import EcoRequest
from mesh.egress import EgressRefused, check_url, parse_networks
from mesh.errors import MeshError
from mesh.settings import var_dir
from services.collaboration import push_repository as prepo
from services.collaboration import repository as repo
from services.collaboration.models import PushSubscriptionRow
from services.collaboration.service import Deps, Who, new_id, now
from services.collaboration.settings import CollaborationSettings

log = logging.getLogger(__name__)

DECLARED = consumer("collaboration-push")
QUEUE_SIZE = 1000  # pushes waiting to be sent; beyond, new ones are dropped (and logged)
# The push kind a notification kind falls under: a broker's introduction is one too.
PUSHED_AS = {"introduction": "introduction", "broker": "introduction", "mention": "mention",
             "reply": "reply"}  # fmt: skip
TITLES = {"introduction": "Introduction", "mention": "You were mentioned", "reply": "New reply"}
SAYS = {
    "approved": "introduced you to someone",
    "rejected": "rejected your introduction",
    "mentioned": "mentioned you",
    "replied": "replied to your thread",
    "proposed": "proposed an introduction with you",
    "accepted": "accepted your introduction",
    "declined": "declined your introduction",
    "connected": "is connected with you now",
    "withdrawn": "withdrew your introduction (the alliance is no longer active)",
}


@dataclass(frozen=True)
class VapidKey:
    pem: bytes
    public_key: str  # base64url of the uncompressed P-256 point: applicationServerKey


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def vapid_key(settings: CollaborationSettings) -> VapidKey:
    """The configured key, else the one in the key file (created there on first use)."""
    pem = settings.vapid_private_key.encode()
    if not pem:
        path = (
            Path(settings.vapid_key_file)
            if settings.vapid_key_file
            else var_dir() / "vapid-private.pem"
        )
        pem = _read_or_create(path)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the VAPID key must be a P-256 (secp256r1) private key")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKey(pem, _b64url(point))


def _read_or_create(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:  # exclusive: two processes starting at once keep the first one's key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return pem


@dataclass(frozen=True)
class Job:
    subscription: str
    endpoint: str
    p256dh: str
    auth: str
    payload: str


def _view(row: PushSubscriptionRow) -> p.PushSubscriptionView:
    parts = urlsplit(row.endpoint)
    return p.PushSubscriptionView(
        id=row.id, endpoint_origin=f"{parts.scheme}://{parts.netloc}", created_at=row.created_at
    )


class Pusher:
    """The push operations of a person, the consumer that queues pushes, and the sender."""

    def __init__(self, deps: Deps, settings: CollaborationSettings) -> None:
        self.deps = deps
        self.key = vapid_key(settings)
        self.vapid = Vapid.from_pem(self.key.pem)
        self.subject = settings.vapid_subject
        self.timeout = settings.push_timeout
        self.ttl = settings.push_ttl
        self.allowed = parse_networks(settings.push_egress_allow)
        self.queue: asyncio.Queue[Job] = asyncio.Queue(QUEUE_SIZE)

    def routes(self) -> dict[Operation, Callable[[Who, Any], Awaitable[BaseModel]]]:
        return {
            p.PUSH_SETTINGS: self.settings,
            p.SET_PUSH_KINDS: self.set_kinds,
            p.SUBSCRIBE_PUSH: self.subscribe,
            p.UNSUBSCRIBE_PUSH: self.unsubscribe,
        }

    # ---------------------------------------------------------------- operations

    async def settings(self, who: Who, req: EcoRequest) -> p.PushSettings:
        async with self.deps.transaction() as s:
            kinds = await prepo.pushed_kinds(s, req.eco, who.sub)
            subs = await prepo.subscriptions_of(s, req.eco, who.sub)
        return p.PushSettings(
            public_key=self.key.public_key,
            kinds={k: k in kinds for k in p.PUSH_KINDS},  # type: ignore[misc]
            subscriptions=[_view(r) for r in subs],
        )

    async def set_kinds(self, who: Who, req: p.SetPushKinds) -> p.PushSettings:
        async with self.deps.transaction() as s:
            await prepo.set_pushed(s, req.eco, who.sub, req.kinds.items())
        return await self.settings(who, req)

    async def subscribe(self, who: Who, req: p.SubscribePush) -> p.PushSubscriptionView:
        """This browser's subscription for the caller; the same endpoint again is the same
        subscription (its keys renewed), and one registered by someone else is refused."""
        try:
            await check_url(req.endpoint, self.allowed)
        except EgressRefused as exc:
            raise MeshError(ErrorCode.VALIDATION_FAILED, f"push endpoint refused: {exc}") from None
        digest = hashlib.sha256(req.endpoint.encode()).hexdigest()
        async with self.deps.transaction() as s:
            row = await prepo.by_endpoint(s, digest)
            if row is not None and (row.eco, row.person) != (req.eco, who.sub):
                raise MeshError(ErrorCode.CONFLICT, "this push endpoint belongs to someone else")
            if row is None:
                row = PushSubscriptionRow(
                    id=new_id("ps")[:32],
                    eco=req.eco,
                    person=who.sub,
                    endpoint_hash=digest,
                    endpoint=req.endpoint,
                    created_at=now(),
                    p256dh=req.keys.p256dh,
                    auth=req.keys.auth,
                )
                s.add(row)
            else:
                row.p256dh, row.auth = req.keys.p256dh, req.keys.auth
            await s.flush()
            return _view(row)

    async def unsubscribe(self, who: Who, req: p.PushSubscriptionRequest) -> p.PushSettings:
        async with self.deps.transaction() as s:
            gone = await prepo.delete_subscription(s, req.subscription, req.eco, who.sub)
        if not gone:
            raise MeshError(ErrorCode.NOT_FOUND, "no such push subscription")
        return await self.settings(who, req)

    # ---------------------------------------------------------------- pushing

    async def notification_added(self, session: AsyncSession, event: EventBase) -> None:
        """Queue a push of the notification to each subscription of its recipient, when
        they opted in to its kind (in the consumer's transaction: reads only)."""
        if not isinstance(event, NotificationAdded):
            return
        eco, note = event.ecosystem, event.data.notification
        person = event.data.recipient
        kind = PUSHED_AS.get(note.kind)
        if kind is None or kind not in await prepo.pushed_kinds(session, eco, person):
            return
        subs = await prepo.subscriptions_of(session, eco, person)
        if not subs:
            return
        actor = await repo.person(session, eco, note.actor)
        name = (actor.name or actor.handle or actor.sub) if actor else note.actor
        says = SAYS.get(note.action, "notified you")
        if note.content_kind == "introduction":
            url = "/introductions#intro-" + quote(note.content_id, safe="")
        else:
            url = f"/notifications#note-{note.id}"
        message = p.PushMessage(
            title=TITLES[kind],
            body=f"{name} {says}" + (f": {note.excerpt}" if note.excerpt else ""),
            url=url,
            kind=kind,  # type: ignore[arg-type]
            notification=note.id,
        )
        payload = message.model_dump_json()
        for row in subs:
            try:
                self.queue.put_nowait(Job(row.id, row.endpoint, row.p256dh, row.auth, payload))
            except asyncio.QueueFull:
                log.warning("push queue full: a push of notification %s was dropped", note.id)

    async def run(self) -> None:
        """Send queued pushes, one at a time, until cancelled."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                job = await self.queue.get()
                try:
                    await self.send(http, job)
                except Exception:  # one failed push (even the database) stops no other
                    log.exception("push to subscription %s failed", job.subscription)
                finally:
                    self.queue.task_done()

    async def send(self, http: aiohttp.ClientSession, job: Job) -> None:
        info = {"endpoint": job.endpoint, "keys": {"p256dh": job.p256dh, "auth": job.auth}}
        try:
            await check_url(job.endpoint, self.allowed)  # its name may resolve elsewhere now
            await webpush_async(
                info,
                job.payload,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                ttl=self.ttl,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                aiohttp_session=http,
            )
        except WebPushException as exc:
            status = getattr(exc.response, "status", None)
            if status in (404, 410):  # RFC 8030 §7.3: the subscription expired
                async with self.deps.transaction() as s:
                    await prepo.delete_subscription(s, job.subscription)
                log.info("push subscription %s expired (%s): removed", job.subscription, status)
            else:
                log.warning("push to subscription %s failed: %s", job.subscription, status)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, EgressRefused) as exc:
            log.warning("push to subscription %s failed: %s", job.subscription, type(exc).__name__)
