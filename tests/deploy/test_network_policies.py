"""The NetworkPolicies let through the flows the mesh needs, and no others."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.manifests import load_k8s, mutated
from tests.deploy.netpol import OTHER_NAMESPACE, OUTSIDE, allowed

SERVICES = ("profile", "matching", "collaboration", "connector")
BUS = ("identity", "gateway", *SERVICES, "bus-streams")
DATABASE = ("identity", *SERVICES, "portal", "migrate")


def pod(app: str) -> dict[str, str]:
    return {"app": app}


Peer = dict[str, str] | str
"""Pod labels, or ``OUTSIDE`` / ``OTHER_NAMESPACE``."""
Flow = tuple[Peer, Peer, int]
"""(source, destination, port)."""

NEEDED: list[Flow] = [
    *[(pod(p), pod("nats"), 4222) for p in BUS],
    (pod("nats"), pod("nats"), 6222),
    *[(pod(p), OUTSIDE, 5432) for p in DATABASE],
    (pod("identity"), pod("redis"), 6379),
    (pod("gateway"), pod("redis"), 6379),
    *[(pod(p), pod("identity"), 8081) for p in ("gateway", *SERVICES, "portal")],
    (pod("portal"), pod("gateway"), 8080),
    (OTHER_NAMESPACE, pod("identity"), 8081),
    (OTHER_NAMESPACE, pod("gateway"), 8080),
    (OTHER_NAMESPACE, pod("portal"), 8082),
    *[(OTHER_NAMESPACE, pod(p), 9100) for p in ("gateway", *SERVICES)],
    (pod("connector"), OUTSIDE, 443),
    (pod("collaboration"), OUTSIDE, 443),  # Web Push to the browsers' push services
]
FORBIDDEN: list[Flow] = [
    (pod("portal"), pod("nats"), 4222),  # the portal is no bus client
    (pod("migrate"), pod("nats"), 4222),
    (OTHER_NAMESPACE, pod("nats"), 4222),  # the bus is not exposed
    (pod("profile"), pod("redis"), 6379),
    (pod("portal"), pod("redis"), 6379),
    (OTHER_NAMESPACE, pod("redis"), 6379),
    (pod("profile"), OUTSIDE, 443),  # only the connector (and push) call out
    (pod("collaboration"), OUTSIDE, 80),  # push services are HTTPS
    (pod("gateway"), OUTSIDE, 5432),  # the gateway has no database
    (pod("portal"), OUTSIDE, 443),
    (pod("profile"), pod("gateway"), 8080),
    (pod("nats"), OUTSIDE, 443),
    (OTHER_NAMESPACE, pod("profile"), 8080),
]


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return load_k8s()


def label(flow: Flow) -> str:
    source, destination, port = flow

    def name(x: Peer) -> str:
        return x["app"] if isinstance(x, dict) else x

    return f"{name(source)}->{name(destination)}:{port}"


@pytest.mark.parametrize("flow", NEEDED, ids=label)
def test_needed_flow_passes(docs: list[dict[str, Any]], flow: Flow) -> None:
    assert allowed(docs, *flow)


@pytest.mark.parametrize("flow", FORBIDDEN, ids=label)
def test_other_flow_is_refused(docs: list[dict[str, Any]], flow: Flow) -> None:
    assert not allowed(docs, *flow)


def test_without_the_default_deny_everything_else_would_pass(docs: list[dict[str, Any]]) -> None:
    """The evaluator sees the default deny: take it away and the unselected flows open."""
    open_ = mutated(docs, lambda d: d.__setitem__(slice(None), [
        x for x in d if x["kind"] != "NetworkPolicy" or x["metadata"]["name"] != "default-deny"
    ]))  # fmt: skip
    for flow in (
        (OTHER_NAMESPACE, pod("migrate"), 8080),
        (OTHER_NAMESPACE, pod("bus-streams"), 80),
    ):
        assert not allowed(docs, *flow)
        assert allowed(open_, *flow)


def test_a_missing_allow_rule_is_found(docs: list[dict[str, Any]]) -> None:
    def plant(d: list[dict[str, Any]]) -> None:
        d[:] = [
            x for x in d if x["kind"] != "NetworkPolicy" or x["metadata"]["name"] != "redis-clients"
        ]

    assert not allowed(mutated(docs, plant), pod("gateway"), pod("redis"), 6379)
