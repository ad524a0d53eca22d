"""Which connections the NetworkPolicies let through, evaluated as Kubernetes does:
a pod selected by no policy of a direction is open in it; once selected, a connection
passes only if some rule of a selecting policy admits it, on both ends."""

from __future__ import annotations

from typing import Any

OUTSIDE = "outside"  # an address outside the cluster (the database, partners' back-ends)
OTHER_NAMESPACE = "other-namespace"  # e.g. the ingress controller, the metrics scraper


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: dict[str, str] | str) -> bool:
    if "ipBlock" in peer:
        return other == OUTSIDE
    if other == OUTSIDE:
        return False
    if other == OTHER_NAMESPACE:
        return "namespaceSelector" in peer and "podSelector" not in peer
    assert isinstance(other, dict), other
    if "namespaceSelector" in peer:  # any namespace, this one included
        return _matches(peer.get("podSelector", {}), other)
    return _matches(peer["podSelector"], other)


def _port_matches(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port for p in ports)


def _admits(
    policies: list[dict[str, Any]], labels: dict[str, str], direction: str, other: Any, port: int
) -> bool:
    kind, key, peers = (
        ("Egress", "egress", "to") if direction == "out" else ("Ingress", "ingress", "from")
    )
    selecting = [
        p for p in policies
        if kind in p["spec"].get("policyTypes", []) and _matches(p["spec"]["podSelector"], labels)
    ]  # fmt: skip
    if not selecting:
        return True
    return any(
        _port_matches(rule, port)
        and (peers not in rule or any(_peer_matches(peer, other) for peer in rule[peers]))
        for p in selecting
        for rule in p["spec"].get(key, [])
    )


def allowed(docs: list[dict[str, Any]], source: Any, destination: Any, port: int) -> bool:
    """Whether ``source`` (pod labels, OUTSIDE or OTHER_NAMESPACE) may open a connection
    to ``destination`` on ``port``."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    out_ok = not isinstance(source, dict) or _admits(policies, source, "out", destination, port)
    in_ok = not isinstance(destination, dict) or _admits(policies, destination, "in", source, port)
    return out_ok and in_ok
