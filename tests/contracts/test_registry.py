"""Decoding stream messages: a single event or a CloudEvents JSON batch, on contract."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.registry import batchable, decode_events
from contracts.v1.identity import AuditData, AuditEvent


def _audit(action: str) -> AuditEvent:
    return AuditEvent(ecosystem="acme", data=AuditData(action=action))


class TestDecodeEvents:
    def test_a_single_event_is_a_list_of_one(self) -> None:
        event = _audit("x")
        assert decode_events(event.model_dump_json().encode()) == [event]

    def test_a_batch_keeps_its_order_and_every_id(self) -> None:
        events = [_audit(f"e{i}") for i in range(3)]
        raw = " [" + ",".join(e.model_dump_json() for e in events) + "]"
        assert decode_events(raw) == events
        assert decode_events(raw.encode()) == events

    @pytest.mark.parametrize(
        "raw",
        [b"", b"[]x", b'{"not": "an event"}', b'[{"not": "an event"}]', b"[1, 2]", b"null"],
    )
    def test_off_contract_is_refused(self, raw: bytes) -> None:
        with pytest.raises(ValidationError):
            decode_events(raw)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("pm.v1.evt.acme.identity.audit", True),
        ("pm.v1.evt.globex.identity.audit", True),
        ("pm.v1.evt.acme.identity.token_revoked", False),  # every consumer acts on each
        ("pm.v1.evt.acme.collaboration.post_created", False),
        ("pm.v1.evt.acme.identity.unknown", False),
        ("pm.v1.evt.identity.audit", False),
        ("pm.v1.identity.audit", False),
        ("other.pm.v1.evt.acme.identity.audit", False),
    ],
)
def test_which_subjects_may_be_batched(subject: str, expected: bool) -> None:
    assert batchable(subject) is expected


def test_batchable_agrees_with_the_registry_for_every_event_type() -> None:
    """contracts.batching answers from the source's own module, else the registry: the
    same answer as every event class's BATCHABLE, for every event the registry knows."""
    from contracts import batching
    from contracts.registry import EVENT_TYPES
    from contracts.subjects import event_subject

    assert batching.batchable is batchable  # one definition
    for event in EVENT_TYPES:
        subject = event_subject("acme", event.model_fields["type"].default)
        assert batchable(subject) is event.BATCHABLE, subject
    assert any(event.BATCHABLE for event in EVENT_TYPES)  # the check can fail


def test_publishing_identity_events_loads_no_other_service_contracts() -> None:
    """A process that only publishes its own events (identity) never imports the registry,
    which loads every service's contracts."""
    import subprocess
    import sys

    code = (
        "import sys, mesh.outbox, mesh.migrate; "
        "from contracts.batching import batchable; "
        "assert batchable('pm.v1.evt.acme.identity.audit'); "
        "assert not batchable('pm.v1.evt.acme.identity.token_revoked'); "
        "print(sorted(m for m in sys.modules if m.startswith('contracts.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "contracts.registry" not in out.stdout
    assert "contracts.v1.matching" not in out.stdout and "contracts.v1.identity" in out.stdout
