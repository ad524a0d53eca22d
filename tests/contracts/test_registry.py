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
