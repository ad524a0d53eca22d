"""Every subject has one owner in contracts, and what is deployed is what they derive."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from contracts.bus import (
    CONSUMERS,
    LIVE_READERS,
    PROCESSES,
    SERVICES,
    Consumer,
    all_grants,
    consumers_of,
    event_subjects,
    event_type,
    grants,
    ownership_problems,
)
from contracts.claims import Scope
from contracts.envelope import EventBase
from contracts.policy import Operation, Policy
from contracts.registry import EVENT_TYPES, OPERATIONS
from contracts.v1.collaboration import NOTIFICATION_STREAM
from contracts.v1.identity import TokenRevoked
from deploy import bus
from deploy.natsconf import permission_table

ROOT = Path(__file__).resolve().parents[2]


class _Unowned(EventBase):
    type: str = "pm.v1.billing.invoiced"


UNOWNED_OPERATION = Operation(
    name="billing.charge",
    subject="pm.v1.billing.charge",
    method="POST",
    path="/v1/ecosystems/{eco}/charges",
    request=BaseModel,
    reply=BaseModel,
    policy=Policy(scope=Scope.MESH_PING),
    summary="a subject nobody serves",
)


class TestOwnership:
    def test_the_contracts_are_consistent(self) -> None:
        assert ownership_problems() == []

    def test_a_new_operation_without_a_service_fails(self) -> None:
        problems = ownership_problems(operations=(*OPERATIONS, UNOWNED_OPERATION))
        assert problems == ["operation billing.charge (pm.v1.billing.charge): no service 'billing'"]

    def test_a_new_event_without_a_producer_fails(self) -> None:
        problems = ownership_problems(events=(*EVENT_TYPES, _Unowned))
        assert problems == ["event pm.v1.billing.invoiced: no producing process 'billing'"]

    def test_a_consumer_of_nothing_or_twice_declared_fails(self) -> None:
        bogus = Consumer("profile", "profile-identity", ("pm.v1.identity.nothing",))
        problems = ownership_problems(consumers=(*CONSUMERS, bogus))
        assert "consumer profile-identity: declared twice" in problems
        assert "consumer profile-identity: no event pm.v1.identity.nothing" in problems

    def test_every_event_subject_is_published_by_its_producer_only(self) -> None:
        for event in EVENT_TYPES:
            type_ = event_type(event)
            _, _, source, name = type_.split(".")
            subject = f"pm.v1.evt.*.{source}.{name}"
            publishers = [p for p, g in all_grants().items() if subject in g.publish]
            assert publishers == [source], type_

    def test_every_operation_is_served_by_its_service_only(self) -> None:
        for op in OPERATIONS:
            servers = [p for p, g in all_grants().items() if f"{op.subject} {p}" in g.subscribe]
            assert servers == [op.service]

    def test_live_streams_are_read_by_the_gateway_and_the_portal_has_no_credential(self) -> None:
        """The portal's live notifications come through the gateway's stream: the portal
        is not on the bus, and the gateway reads them with its own ephemeral consumer."""
        assert "portal" not in PROCESSES and LIVE_READERS == ("gateway",)
        gateway = grants("gateway")
        creates = [s for s in gateway.publish if s.startswith("$JS.API.CONSUMER.CREATE.")]
        read: tuple[type[EventBase], ...] = (TokenRevoked, *NOTIFICATION_STREAM.events)
        assert sorted(creates) == sorted(
            f"$JS.API.CONSUMER.CREATE.PM_EVENTS.*.{event_subjects(event_type(e))}" for e in read
        ), "one filter per consumer, in the create subject: nothing else is readable"
        assert not [s for s in gateway.publish if s.startswith("pm.v1.evt.")]
        assert not [c for c in CONSUMERS if c.process == "gateway"]  # no durable to share

    def test_only_identity_may_publish_identity_events(self) -> None:
        for process in PROCESSES:
            if process in ("identity", "ops"):
                continue
            events = [s for s in grants(process).publish if s.startswith("pm.v1.evt.")]
            assert not [s for s in events if ".identity." in s], process


class TestConsumersAreDeclared:
    """The services consume what contracts declare: no filter written in a handler."""

    @pytest.mark.parametrize("service", SERVICES)
    def test_no_literal_filters_in_handlers(self, service: str) -> None:
        for path in (ROOT / "services" / service).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "consume":
                    assert not isinstance(node.args[0], ast.Constant), f"{path}: durable literal"
                    assert not isinstance(node.args[1], ast.List), f"{path}: filter literal"
                if isinstance(node, ast.Name) and node.id == "event_filter":
                    pytest.fail(f"{path} builds an event filter itself; declare it in contracts")

    @pytest.mark.parametrize("service", SERVICES)
    def test_every_service_consumes_something(self, service: str) -> None:
        assert consumers_of(service)


class TestRenderedConfigs:
    """The committed configurations are what ``partnermesh nats render`` writes."""

    def test_single_node(self) -> None:
        assert (ROOT / "deploy/nats/single.conf").read_text() == bus.single_conf()

    def test_cluster(self) -> None:
        for name, text in bus.cluster_confs("deploy/nats/cluster").items():
            assert (ROOT / "deploy/nats/cluster" / name).read_text() == text

    def test_compose(self) -> None:
        assert (ROOT / "deploy/nats/compose/nats.conf").read_text() == bus.compose_conf()

    def test_kubernetes(self) -> None:
        docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/nats.yaml").read_text()))
        [config] = [d for d in docs if d["kind"] == "ConfigMap"]
        assert config["data"]["nats.conf"] == bus.k8s_conf()

    def test_every_process_gets_its_own_key_and_inbox(self) -> None:
        text = (ROOT / "deploy/compose.yaml").read_text()
        k8s = (ROOT / "deploy/k8s/edge.yaml").read_text()
        k8s += (ROOT / "deploy/k8s/services.yaml").read_text()
        for process in ("identity", "gateway", *SERVICES):
            for manifest in (text, k8s):
                assert f"/run/bus/{process}.nk" in manifest
                assert f"_INBOX.{process}" in manifest

    def test_render_writes_secrets_privately(self, tmp_path: Path) -> None:
        written = bus.render("k8s", tmp_path)
        assert tmp_path / "secrets.yaml" in written
        for seed in (tmp_path / "creds").iterdir():
            assert seed.stat().st_mode & 0o777 == 0o600
        for secret in ("tls/server-key.pem", "tls/ca-key.pem", "secrets.yaml"):
            assert (tmp_path / secret).stat().st_mode & 0o777 == 0o600
        secrets = list(yaml.safe_load_all((tmp_path / "secrets.yaml").read_text()))
        names = {d["metadata"]["name"]: set(d["data"]) for d in secrets}
        assert names["bus-credentials"] == {f"{p}.nk" for p in PROCESSES} | {"ca.pem"}
        assert "ca-key.pem" not in names["nats-server"]

    def test_table_lists_every_process(self) -> None:
        table = permission_table()
        for process in PROCESSES:
            assert f"| {process} | " in table
