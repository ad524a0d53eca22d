"""What an operator's review of the manifests asks beyond the settings: pinned images,
resources, non-root read-only containers, probes, disruption budgets, the NATS bootstrap;
for compose: health checks, start order, host ports, no loopback between containers."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.manifests import containers, pod_spec

NATS_STARTUP = "/healthz?js-enabled-only=true"
LOOPBACK = re.compile(r"://(localhost|127\.0\.0\.1|\[::1\])[:/]")
# settings a process connects with (the issuer's public name is not one of them)
CONNECTS = ("_NATS_URL", "_DATABASE_URL", "_REDIS_URL", "_INTERNAL_URL", "_GATEWAY_URL")


def image_problems(where: str, image: str) -> list[str]:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or tag in ("", "latest"):
        return [f"{where}: image {image} is not pinned to a version"]
    return []


def _container_problems(workload: str, spec: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    where = f"{workload}/{spec['name']}"
    problems = image_problems(where, spec["image"])
    res = spec.get("resources", {})
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in res.get(kind, {}):
                problems.append(f"{where}: no {what} {kind}")
    sc = spec.get("securityContext", {})
    if (
        sc.get("readOnlyRootFilesystem") is not True
        or sc.get("allowPrivilegeEscalation") is not False
    ):
        problems.append(f"{where}: root filesystem writable or privilege escalation allowed")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append(f"{where}: capabilities not dropped")
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        problems.append(f"{where}: may run as root")
    if spec["image"].startswith("partnermesh:"):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        tmp = [m for m in spec.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        if not tmp or "emptyDir" not in volumes[tmp[0]["name"]]:
            problems.append(f"{where}: no writable /tmp (emptyDir) for a read-only root")
    return problems


def _probe_problems(where: str, spec: dict[str, Any]) -> list[str]:
    problems = [
        f"{where}: no {p}"
        for p in ("startupProbe", "readinessProbe", "livenessProbe")
        if p not in spec
    ]
    ports = {p.get("name") for p in spec.get("ports", [])} | {
        p["containerPort"] for p in spec.get("ports", [])
    }
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        port = spec.get(probe, {}).get("httpGet", {}).get("port")
        if port is not None and port not in ports:
            problems.append(
                f"{where}: {probe} on port {port}, which the container does not declare"
            )
    declared = {str(p["containerPort"]) for p in spec.get("ports", [])}
    for item in spec.get("env", []):
        if item["name"].endswith("_PORT") and str(item.get("value")) not in declared:
            problems.append(f"{where}: {item['name']}={item.get('value')} is not a declared port")
    return problems


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def k8s_hygiene(docs: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    for c in containers(docs):
        problems += _container_problems(c.workload, c.spec, pod_spec(c.doc))
        if c.doc["kind"] != "Job":
            problems += _probe_problems(f"{c.workload}/{c.spec['name']}", c.spec)
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for doc in docs:
        if doc["metadata"].get("namespace") != "partnermesh" and doc["kind"] != "Namespace":
            problems.append(
                f"{doc['kind']}/{doc['metadata']['name']}: not in namespace partnermesh"
            )
        if doc["kind"] in ("Deployment", "StatefulSet") and doc["spec"].get("replicas", 1) > 1:
            labels = doc["spec"]["template"]["metadata"]["labels"]
            if not any(_selects(p["spec"]["selector"], labels) for p in pdbs):
                problems.append(
                    f"{doc['kind']}/{doc['metadata']['name']}: replicated, no PodDisruptionBudget"
                )
    if not any(
        d["kind"] == "NetworkPolicy"
        and d["spec"]["podSelector"] == {}
        and set(d["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not d["spec"].get("ingress")
        and not d["spec"].get("egress")
        for d in docs
    ):
        problems.append("no default-deny NetworkPolicy")
    return problems + nats_bootstrap_problems(docs)


def nats_bootstrap_problems(docs: list[dict[str, Any]]) -> list[str]:
    """The official chart's bootstrap: all nodes at once, found while not ready."""
    sts = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "nats")
    problems = []
    if sts["spec"].get("podManagementPolicy") != "Parallel":
        problems.append("nats: pods are not started in parallel")
    svc = next(
        d
        for d in docs
        if d["kind"] == "Service" and d["metadata"]["name"] == sts["spec"]["serviceName"]
    )
    if (
        svc["spec"].get("clusterIP") != "None"
        or svc["spec"].get("publishNotReadyAddresses") is not True
    ):
        problems.append("nats: the headless service does not publish not-ready addresses")
    nats = pod_spec(sts)["containers"][0]
    if nats.get("startupProbe", {}).get("httpGet", {}).get("path") != NATS_STARTUP:
        problems.append(f"nats: the startup probe is not {NATS_STARTUP}")
    if nats.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        problems.append("nats: the readiness probe is not /healthz")
    return problems


# -- compose -----------------------------------------------------------------------------

ONE_SHOTS = ("migrate", "streams")


def compose_hygiene(doc: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services = doc["services"]
    host_ports: dict[str, str] = {}
    for name, s in services.items():
        problems += image_problems(name, s.get("image", ""))
        if name not in ONE_SHOTS and "healthcheck" not in s:
            problems.append(f"{name}: no health check")
        deps = s.get("depends_on", {})
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on without a condition")
            deps = {}
        for dep, cond in deps.items():
            want = "service_completed_successfully" if dep in ONE_SHOTS else "service_healthy"
            if cond.get("condition") != want:
                problems.append(f"{name}: waits for {dep} without condition {want}")
        replicas = s.get("deploy", {}).get("replicas", 1)
        for port in s.get("ports", []):
            host = str(port).rsplit(":", 1)[0]
            if replicas > 1:
                problems.append(f"{name}: {replicas} replicas cannot share host port {host}")
            if host in host_ports:
                problems.append(f"{name}: host port {host} is taken by {host_ports[host]}")
            host_ports[host] = name
        problems += _loopback_problems(name, s.get("environment") or {})
        if s.get("image", "").startswith("partnermesh:") and (
            s.get("read_only") is not True or "/tmp" not in s.get("tmpfs", [])
        ):
            problems.append(f"{name}: root filesystem writable, or no tmpfs /tmp")
    return problems


def _loopback_problems(name: str, env: dict[str, Any]) -> list[str]:
    """In a container, localhost is the container itself: nothing it connects to is there."""
    return [
        f"{name}: {k} points at the container itself ({v})"
        for k, v in env.items()
        if k.endswith(CONNECTS) and LOOPBACK.search(str(v))
    ]
