"""Who may say what on the bus: every subject's one owner, and each process's grants.

Every subject has one owner, read from the contracts rather than written down twice:

- a request subject belongs to the service that serves it (:attr:`Operation.service`);
- an event subject belongs to the process that produces it (the ``<source>`` of its
  type ``pm.v1.<source>.<name>``);
- a durable consumer belongs to the process that declares it in :data:`CONSUMERS`, with
  the event types it reads.

:func:`grants` derives each process's NATS publish/subscribe allow-lists from that data
(never by hand); ``deploy.natsconf`` renders them into the server configuration, and the
bus tests check every grant and every denial against a real server. No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.policy import Operation
from contracts.registry import EVENT_TYPES, OPERATIONS
from contracts.subjects import (
    DEAD_LETTER_PREFIX,
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    PREFIX,
    REPLAY_PREFIX,
    dead_letter_replay_subject,
    event_filter,
)
from contracts.v1.alliances import AllianceChanged
from contracts.v1.collaboration import (
    NOTIFICATION_STREAM,
    ContentCreated,
    ContentEdited,
    ContentHidden,
    NotificationAdded,
    WorkspaceMembershipChanged,
)
from contracts.v1.connector import PartnerEventReceived
from contracts.v1.identity import PartnerRegistered, PersonRegistered, TokenRevoked
from contracts.v1.matching import IntroductionChanged, IntroductionConnected
from contracts.v1.profile import CompanyProfileUpdated, PersonProfileUpdated, ProfileVerified

SERVICES = ("profile", "matching", "collaboration", "connector")
"""NATS micro services: each serves its operations in the queue group of its name."""

REBUILD = "matching-rebuild"
"""``python -m services.matching rebuild --replay``: reads the event history once."""

OPS = "ops"
"""Operators' tools: service discovery (``$SRV``), dead letters (list and replay)."""

ADMIN = "admin"
"""Deploy/migrate time only: creates and updates the streams."""

PROCESSES = ("identity", "gateway", *SERVICES, REBUILD, OPS, ADMIN)
"""Every process that connects to NATS, each with its own credential. (The portal talks
HTTP to the gateway only, so it has none: its live notifications come from the gateway's
notification stream, see :data:`LIVE_READERS`.)"""

STREAMS = (EVENT_STREAM, DEAD_LETTER_STREAM)
JS_API = "$JS.API"
SRV_VERBS = ("PING", "INFO", "STATS")


def event_type(event: type) -> str:
    """The ``type`` of an event model (``pm.v1.<source>.<name>``)."""
    return str(event.model_fields["type"].default)  # type: ignore[attr-defined]


def event_owner(type_: str) -> str:
    """The process that produces events of ``type_``: its ``<source>``."""
    return type_.split(".")[2]


def event_subjects(type_: str) -> str:
    """Every ecosystem's subject of an event type: ``pm.v1.evt.*.<source>.<name>``."""
    _, _, source, name = type_.split(".")
    return event_filter(source=source, name=name)


@dataclass(frozen=True)
class Consumer:
    """A durable consumer of the event stream: its owner, its name and what it reads."""

    process: str
    durable: str
    events: tuple[str, ...]

    @property
    def filter_subjects(self) -> list[str]:
        return [event_subjects(t) for t in self.events]


def _types(*events: type) -> tuple[str, ...]:
    return tuple(event_type(e) for e in events)


CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        "profile",
        "profile-identity",
        _types(PersonRegistered, PartnerRegistered, AllianceChanged),
    ),
    Consumer("profile", "profile-matching", _types(IntroductionConnected)),
    Consumer(
        "profile", "profile-collaboration", _types(ContentCreated, ContentEdited, ContentHidden)
    ),
    Consumer(
        "matching",
        "matching-signals",
        _types(
            PersonProfileUpdated,
            CompanyProfileUpdated,
            ContentCreated,
            WorkspaceMembershipChanged,
            AllianceChanged,
        ),
    ),
    Consumer(
        "collaboration",
        "collaboration",
        _types(
            IntroductionConnected,
            PersonProfileUpdated,
            PersonRegistered,
            IntroductionChanged,  # notifications: introductions, broker actions
            ProfileVerified,  # notifications: verifications
            AllianceChanged,  # workspaces across an alliance
        ),
    ),
    # Web Push of the notifications it records (services/collaboration/push.py)
    Consumer("collaboration", "collaboration-push", _types(NotificationAdded)),
    Consumer("connector", "connector-webhooks", _types(PartnerEventReceived)),
    # the alliances whose terms let partners grant operations across (mesh.alliances)
    Consumer("connector", "connector-alliances", _types(AllianceChanged)),
)

REVOCATION_READERS = ("gateway", *SERVICES)
"""Processes that keep a revocation list fed (``mesh.revocation.RevocationFeed``: an
ordered consumer of identity's ``token_revoked`` events)."""

REVOCATIONS = event_type(TokenRevoked)

LIVE_READERS = ("gateway",)
"""Processes that serve live streams (``contracts.v1.collaboration.NOTIFICATION_STREAM``)
from an ephemeral consumer of their own (every replica hears every event and keeps what
its open streams need), with the same grants as their revocation feed: no durable, no
queue group, nothing another process could read in their place."""

LIVE_EVENTS = NOTIFICATION_STREAM.events
"""What the live readers' ephemeral consumers may read (see :func:`ephemeral_filters`)."""


def consumer(durable: str) -> Consumer:
    """The declared consumer ``durable``."""
    for c in CONSUMERS:
        if c.durable == durable:
            return c
    raise KeyError(durable)


def consumers_of(process: str) -> tuple[Consumer, ...]:
    return tuple(c for c in CONSUMERS if c.process == process)


def requests_of(process: str) -> tuple[str, ...]:
    """The request subjects ``process`` sends: the gateway routes every operation over
    HTTP; services call no other service (they talk through events)."""
    if process == "gateway":
        return tuple(op.subject for op in OPERATIONS)
    return ()


def inbox_prefix(process: str) -> str:
    """Where ``process`` reads its replies: nobody else may subscribe there."""
    return f"_INBOX.{process}"


@dataclass(frozen=True)
class Grants:
    """A process's NATS permissions (allow-lists; everything else is denied).

    ``publish_deny`` carves out of a wildcard allow what belongs to other processes: the
    revocation feed's pull consumer has a server-chosen name, so fetching from and deleting
    ``PM_EVENTS.*`` is allowed, except every durable another process declares."""

    process: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False
    publish_deny: tuple[str, ...] = ()

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.process)


def _api(*parts: str) -> str:
    return ".".join((JS_API, *parts))


def _durable_grants(c: Consumer) -> list[str]:
    """Create (either API form), look up, fetch from and ack its own durable only."""
    return [
        _api("CONSUMER.DURABLE.CREATE", EVENT_STREAM, c.durable),
        _api("CONSUMER.CREATE", EVENT_STREAM, c.durable),
        _api("CONSUMER.CREATE", EVENT_STREAM, c.durable, ">"),
        _api("CONSUMER.INFO", EVENT_STREAM, c.durable),
        _api("CONSUMER.MSG.NEXT", EVENT_STREAM, c.durable),
        f"$JS.ACK.{EVENT_STREAM}.{c.durable}.>",
    ]


def _ephemeral_consumer_grants(stream: str, filters: Sequence[str]) -> list[str]:
    """Ephemeral pull consumers of ``stream`` that read ``filters`` and nothing else: the
    client names each consumer and puts its one filter in the API subject (the server
    refuses a body whose filter differs from the subject's), then looks it up, fetches
    from and deletes it. Neither the bare create (a filter in the body only) nor a
    filterless one is granted; other processes' durables stay out of reach
    (:func:`_others_durables`)."""
    return [
        *(_api("CONSUMER.CREATE", stream, "*", f) for f in filters),
        _api("CONSUMER.INFO", stream, "*"),
        _api("CONSUMER.MSG.NEXT", stream, "*"),
        _api("CONSUMER.DELETE", stream, "*"),
    ]


def ephemeral_filters(process: str) -> tuple[str, ...]:
    """What ``process`` may read through ephemeral consumers of its own: the revocation
    feed and, for a live reader, the events of the live streams it serves."""
    filters: list[str] = []
    if process in REVOCATION_READERS:
        filters.append(event_subjects(REVOCATIONS))
    if process in LIVE_READERS:
        filters += [event_subjects(event_type(e)) for e in LIVE_EVENTS]
    return tuple(filters)


def _others_durables(process: str) -> list[str]:
    """Everything that would reach another process's durable consumer."""
    deny: list[str] = []
    for c in CONSUMERS:
        if c.process == process:
            continue
        deny += [
            _api("CONSUMER.DURABLE.CREATE", EVENT_STREAM, c.durable),
            _api("CONSUMER.CREATE", EVENT_STREAM, c.durable),
            _api("CONSUMER.CREATE", EVENT_STREAM, c.durable, ">"),
            _api("CONSUMER.MSG.NEXT", EVENT_STREAM, c.durable),
            _api("CONSUMER.DELETE", EVENT_STREAM, c.durable),
            f"$JS.ACK.{EVENT_STREAM}.{c.durable}.>",
        ]
    return deny


def _consumer_upkeep(process: str) -> tuple[list[str], list[str]]:
    """(publish, subscribe) a consuming process needs besides its durables: dead letters
    out, replays in (from the operator's tooling), JetStream's max-deliveries advisories of
    its own durables, and the original event an advisory names."""
    pub = [
        f"{DEAD_LETTER_PREFIX}.{process}.>",
        _api("STREAM.INFO", DEAD_LETTER_STREAM),
        _api("STREAM.MSG.GET", EVENT_STREAM),
    ]
    sub = [
        f"{dead_letter_replay_subject(process, c.durable)} {c.durable}"
        for c in consumers_of(process)
    ]
    sub += [
        f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{EVENT_STREAM}.{c.durable} {c.durable}"
        for c in consumers_of(process)
    ]
    return pub, sub


def _service_subscriptions(service: str) -> list[str]:
    """Its own operations in its queue group, and ``$SRV`` discovery addressed to it."""
    subs = [f"{op.subject} {service}" for op in OPERATIONS if op.service == service]
    for verb in SRV_VERBS:
        subs += [f"$SRV.{verb}", f"$SRV.{verb}.{service}", f"$SRV.{verb}.{service}.*"]
    return subs


def _ops_grants() -> list[str]:
    """Discovery, stream/consumer state, dead letters (read, ack) and their replay."""
    return [
        "$SRV.>",
        _api("INFO"),
        _api("STREAM.NAMES"),
        _api("STREAM.LIST"),
        *(_api("STREAM.INFO", s) for s in STREAMS),
        _api("CONSUMER.NAMES", EVENT_STREAM),
        _api("CONSUMER.LIST", EVENT_STREAM),
        _api("CONSUMER.INFO", EVENT_STREAM, "*"),
        _api("STREAM.MSG.GET", DEAD_LETTER_STREAM),
        _api("DIRECT.GET", DEAD_LETTER_STREAM),
        _api("DIRECT.GET", DEAD_LETTER_STREAM, ">"),
        _api("STREAM.MSG.DELETE", DEAD_LETTER_STREAM),  # a replayed dead letter goes
        _api("CONSUMER.CREATE", DEAD_LETTER_STREAM),
        _api("CONSUMER.CREATE", DEAD_LETTER_STREAM, "*"),
        _api("CONSUMER.CREATE", DEAD_LETTER_STREAM, "*", ">"),
        _api("CONSUMER.INFO", DEAD_LETTER_STREAM, "*"),
        _api("CONSUMER.MSG.NEXT", DEAD_LETTER_STREAM, "*"),
        _api("CONSUMER.DELETE", DEAD_LETTER_STREAM, "*"),
        f"$JS.ACK.{DEAD_LETTER_STREAM}.>",
        # Replay hands a dead letter back to its consumer (request/reply), never to the
        # event stream: no other consumer sees it again.
        f"{REPLAY_PREFIX}.>",
    ]


def _admin_grants() -> list[str]:
    """Create, update, inspect (and, by hand, delete) the two streams; nothing else."""
    return [
        _api("INFO"),
        _api("STREAM.NAMES"),
        _api("STREAM.LIST"),
        *(_api("STREAM.*", s) for s in STREAMS),
    ]


def _rebuild_grants() -> list[str]:
    """One ephemeral pull consumer over the event history, fetched and then deleted."""
    return [
        _api("STREAM.INFO", EVENT_STREAM),
        _api("CONSUMER.CREATE", EVENT_STREAM, "*"),
        _api("CONSUMER.INFO", EVENT_STREAM, "*"),
        _api("CONSUMER.MSG.NEXT", EVENT_STREAM, "*"),
        _api("CONSUMER.DELETE", EVENT_STREAM, "*"),
    ]


def grants(process: str) -> Grants:
    """``process``'s permissions, derived from the owners of every subject."""
    if process not in PROCESSES:
        raise KeyError(process)
    pub: list[str] = list(requests_of(process))
    sub: list[str] = [f"{inbox_prefix(process)}.>"]
    owned = sorted({event_subjects(event_type(e)) for e in EVENT_TYPES} & set(_produced(process)))
    pub += owned
    ephemeral = ephemeral_filters(process)
    if owned or consumers_of(process) or ephemeral:
        pub.append(_api("STREAM.INFO", EVENT_STREAM))
    for c in consumers_of(process):
        pub += _durable_grants(c)
    if consumers_of(process):
        upkeep_pub, upkeep_sub = _consumer_upkeep(process)
        pub += upkeep_pub
        sub += upkeep_sub
    deny: list[str] = []
    if ephemeral:
        pub += _ephemeral_consumer_grants(EVENT_STREAM, ephemeral)
        deny += _others_durables(process)
    if process in SERVICES:
        sub += _service_subscriptions(process)
    pub += {OPS: _ops_grants, ADMIN: _admin_grants, REBUILD: _rebuild_grants}.get(process, list)()
    return Grants(
        process,
        publish=tuple(dict.fromkeys(pub)),
        subscribe=tuple(dict.fromkeys(sub)),
        allow_responses=process in SERVICES,
        publish_deny=tuple(dict.fromkeys(deny)),
    )


def _produced(process: str) -> list[str]:
    return [event_subjects(event_type(e)) for e in EVENT_TYPES if _owner(e) == process]


def _owner(event: type) -> str:
    return event_owner(event_type(event))


def all_grants() -> dict[str, Grants]:
    return {p: grants(p) for p in PROCESSES}


def ownership_problems(
    operations: Sequence[Operation] = OPERATIONS,
    events: Sequence[type] = EVENT_TYPES,
    consumers: Sequence[Consumer] = CONSUMERS,
) -> list[str]:
    """Subjects without exactly one known owner, and consumers of nothing: empty when the
    contracts are consistent (a test fails the build otherwise)."""
    problems: list[str] = []
    producers = {"identity", *SERVICES}
    subjects = [op.subject for op in operations]
    for op in operations:
        if op.service not in SERVICES:
            problems.append(f"operation {op.name} ({op.subject}): no service {op.service!r}")
        if subjects.count(op.subject) > 1:
            problems.append(f"operation {op.name}: subject {op.subject} served twice")
    types = [event_type(e) for e in events]
    for t in types:
        parts = t.split(".")
        if len(parts) != 4 or parts[:2] != PREFIX.split(".") or parts[2] not in producers:
            problems.append(f"event {t}: no producing process {event_owner(t)!r}")
        if types.count(t) > 1:
            problems.append(f"event {t}: declared twice")
    durables = [c.durable for c in consumers]
    for c in consumers:
        if c.process not in SERVICES:
            problems.append(f"consumer {c.durable}: {c.process!r} is not a service")
        if durables.count(c.durable) > 1:
            problems.append(f"consumer {c.durable}: declared twice")
        problems += [f"consumer {c.durable}: no event {t}" for t in c.events if t not in types]
    return problems
