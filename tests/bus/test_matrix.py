"""The permission matrix, generated from contracts/bus.py, on a real nats-server.

For every process credential: each subject it is granted is accepted, and each subject
granted to any other process (or one of the known attacks) that its own grants do not
cover is refused by the server, for publish and for subscribe.
"""

from __future__ import annotations

import pytest

from contracts.bus import PROCESSES, SERVICES, all_grants, grants
from contracts.registry import OPERATIONS
from tests.bus.conftest import ConnectAs

PUBLISH_ATTACKS = (
    # stream management, deletion and purge: the admin credential's alone
    "$JS.API.STREAM.CREATE.PM_EVENTS",
    "$JS.API.STREAM.UPDATE.PM_EVENTS",
    "$JS.API.STREAM.DELETE.PM_EVENTS",
    "$JS.API.STREAM.PURGE.PM_EVENTS",
    "$JS.API.STREAM.CREATE.PM_DEAD_LETTERS",
    "$JS.API.STREAM.MSG.DELETE.PM_EVENTS",
    "$JS.API.STREAM.MSG.GET.PM_EVENTS",
    "$JS.API.CONSUMER.DELETE.PM_EVENTS.matching-signals",
    # forged events, in any ecosystem, and an event type nobody owns
    "pm.v1.evt.acme.matching.connected",
    "pm.v1.evt.acme.identity.person_registered",
    "pm.v1.evt.acme.identity.token_revoked",
    "pm.v1.evt.acme.billing.invoiced",
    # forged replies into someone's inbox, and discovery
    "_INBOX.gateway.forged",
    "_INBOX.identity.forged",
    "$SRV.PING",
    "$SRV.INFO.profile",
)

SUBSCRIBE_ATTACKS: tuple[tuple[str, str | None], ...] = (
    (">", None),
    ("pm.v1.>", None),
    ("pm.v1.evt.>", None),
    ("_INBOX.>", None),
    ("_INBOX.*.>", None),
    ("_INBOX.gateway.>", None),
    ("$JS.API.>", None),
    ("$JS.ACK.>", None),
    ("$SRV.>", None),
    # every copy of a request (and its token), outside the queue group
    *((op.subject, None) for op in OPERATIONS),
    *((op.subject, "sniffers") for op in OPERATIONS),
)


def covers(pattern: str, subject: str) -> bool:
    """Whether NATS subject ``pattern`` covers ``subject`` (whose wildcards, if any, must
    be covered as a whole: a subscription is allowed only inside a grant)."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != s[i] and (token != "*" or s[i] == ">")):
            return False
    return len(p) == len(s)


def split(entry: str) -> tuple[str, str | None]:
    subject, _, queue = entry.partition(" ")
    return subject, queue or None


def may_publish(process: str, subject: str) -> bool:
    return any(covers(p, subject) for p in grants(process).publish)


def may_subscribe(process: str, subject: str, queue: str | None) -> bool:
    for entry in grants(process).subscribe:
        pattern, only = split(entry)
        if covers(pattern, subject) and (only is None or only == queue):
            return True
    return False


def concrete(subject: str) -> str:
    """A subject a pattern allows: ``*`` → an ecosystem, ``>`` → two tokens."""
    return ".".join({"*": "acme", ">": "x.y"}.get(t, t) for t in subject.split("."))


def denied_publishes(process: str) -> list[str]:
    others = {concrete(s) for q, g in all_grants().items() if q != process for s in g.publish}
    probes = sorted(others | set(PUBLISH_ATTACKS))
    return [s for s in probes if not may_publish(process, s)]


def denied_subscriptions(process: str) -> list[tuple[str, str | None]]:
    others = {
        (concrete(split(e)[0]), split(e)[1])
        for q, g in all_grants().items()
        if q != process
        for e in g.subscribe
    }
    probes = sorted(others | set(SUBSCRIBE_ATTACKS), key=str)
    return [(s, q) for s, q in probes if not may_subscribe(process, s, q)]


class TestGeneratedExpectations:
    """The matrix itself: it must have denials to prove, and the attacks are among them."""

    @pytest.mark.parametrize("process", PROCESSES)
    def test_every_process_has_denials(self, process: str) -> None:
        assert len(denied_publishes(process)) >= 10
        assert len(denied_subscriptions(process)) >= 10

    @pytest.mark.parametrize("process", SERVICES)
    def test_no_service_may_sniff(self, process: str) -> None:
        denied = denied_subscriptions(process)
        for attack in (("pm.v1.>", None), ("_INBOX.>", None), ("_INBOX.gateway.>", None)):
            assert attack in denied

    def test_matcher(self) -> None:
        assert covers("pm.v1.evt.*.identity.token_revoked", "pm.v1.evt.acme.identity.token_revoked")
        assert not covers("pm.v1.evt.*.identity.token_revoked", "pm.v1.evt.>")
        assert covers("_INBOX.gateway.>", "_INBOX.gateway.abc.1")
        assert not covers("_INBOX.gateway.>", "_INBOX.gateway")
        assert not covers("_INBOX.profile.>", "_INBOX.>")


@pytest.mark.parametrize("process", PROCESSES)
class TestPublish:
    async def test_granted_subjects_are_accepted(self, process: str, connect_as: ConnectAs) -> None:
        p = await connect_as(process)
        granted = [concrete(s) for s in grants(process).publish]
        for subject in granted:
            await p.nc.publish(subject, b"")
        refused = await p.settle()
        assert not [s for s in granted if ("publish", s.lower(), None) in refused]
        assert p.nc.is_connected

    async def test_everything_else_is_refused(self, process: str, connect_as: ConnectAs) -> None:
        p = await connect_as(process)
        denied = denied_publishes(process)
        for subject in denied:
            await p.nc.publish(subject, b"")
        refused = await p.settle()
        assert [s for s in denied if ("publish", s.lower(), None) not in refused] == []


@pytest.mark.parametrize("process", PROCESSES)
class TestSubscribe:
    async def test_granted_subjects_are_accepted(self, process: str, connect_as: ConnectAs) -> None:
        p = await connect_as(process)
        granted = [split(e) for e in grants(process).subscribe]
        for subject, queue in granted:
            await p.nc.subscribe(concrete(subject), queue=queue or "")
        refused = await p.settle()
        assert not [e for e in granted if ("subscription", concrete(e[0]).lower(), e[1]) in refused]

    async def test_everything_else_is_refused(self, process: str, connect_as: ConnectAs) -> None:
        p = await connect_as(process)
        denied = denied_subscriptions(process)
        for subject, queue in denied:
            await p.nc.subscribe(subject, queue=queue or "")
        refused = await p.settle()
        assert [(s, q) for s, q in denied if ("subscription", s.lower(), q) not in refused] == []
