"""The committed contract documents are what the code generates (fails on drift)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import registry
from contracts.export import asyncapi
from deploy.contracts import all_documents, render

GENERATED = Path(__file__).resolve().parents[2] / "contracts" / "generated"


class TestGenerated:
    @pytest.mark.parametrize("name", sorted(all_documents()))
    def test_committed_export_matches_code(self, name: str) -> None:
        committed = GENERATED / name
        assert committed.exists(), f"{committed} is missing: run `make contracts` and commit"
        assert committed.read_text() == render(all_documents()[name]), (
            f"{name} drifted from the contracts: run `make contracts` and commit the result"
        )

    def test_asyncapi_refs_resolve(self) -> None:
        doc = asyncapi()
        text = json.dumps(doc)
        for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
            node = doc
            for key in ref.removeprefix("#/").split("/"):
                node = node[key]

    def test_every_event_has_a_channel(self) -> None:
        addresses = {c["address"] for c in asyncapi()["channels"].values()}
        for event_type in registry.EVENTS_BY_TYPE:
            source_and_name = event_type.removeprefix("pm.v1.")
            assert f"pm.v1.evt.{{eco}}.{source_and_name}" in addresses

    def test_batchable_events_declare_their_batch_message(self) -> None:
        doc = asyncapi()
        batches = {
            c["address"]: c["messages"]["batch"]["$ref"].rsplit("/", 1)[1]
            for c in doc["channels"].values()
            if "batch" in c.get("messages", {})
        }
        assert batches == {"pm.v1.evt.{eco}.identity.audit": "pm_v1_identity_audit_batch"}
        message = doc["components"]["messages"]["pm_v1_identity_audit_batch"]
        assert message["contentType"] == "application/cloudevents-batch+json"
        assert (
            message["payload"]["items"]
            == doc["components"]["messages"]["pm_v1_identity_audit"]["payload"]
        )
