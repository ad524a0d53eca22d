"""Every process of the Kubernetes manifests starts, with exactly the environment its
manifest gives it, and becomes ready: the Jobs first (streams, migrations), then every
Deployment at once, each polled on its own readiness probe (tests/deploy/startup.py says
what stands in for the cluster)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mesh.localnats import free_port, named_nats, nats_server_binary
from tests.deploy.manifests import Container, config_map, containers, load_k8s
from tests.deploy.startup import LocalCluster, bus_secrets, nats_conf
from tests.support import infra

pytestmark = pytest.mark.slow
PROCESSES = ("identity", "gateway", "profile", "matching", "collaboration", "connector", "portal")
READY_WITHIN_S = 90.0


def by_workload(docs: list[dict[str, Any]], name: str) -> Container:
    return next(c for c in containers(docs) if c.workload.split("/")[1] == name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("k8s")
    docs = load_k8s()
    local = LocalCluster(root, docs, secrets=bus_secrets(root / "render"))
    with infra.redis_server() as redis_url, nats_server(root / "render") as port:
        if redis_url is None:
            pytest.skip("needs redis-server on PATH (apt-get install redis-server)")
        config = config_map(docs)
        url = {n: f"http://127.0.0.1:{local.local_ports(by_workload(docs, n))[p]}"
               for n, p in (("identity", 8081), ("gateway", 8080), ("portal", 8082))}  # fmt: skip
        local.hosts = {
            config["nats-url"]: f"nats://127.0.0.1:{port}",
            config["identity-url"]: url["identity"],
            config["identity-internal-url"]: url["identity"],
            config["gateway-internal-url"]: url["gateway"],
            config["portal-url"]: url["portal"],
            config["redis-url"]: redis_url,
        }
        yield local


@contextlib.contextmanager
def nats_server(render: Path) -> Iterator[int]:
    """The rendered one-node bus on free ports, under a server name of its own checked on
    the port (:func:`mesh.localnats.named_nats`); yields its client port."""

    def argv(port: int, name: str) -> list[str]:
        return [nats_server_binary(), "-c", str(nats_conf(render, port, free_port(), name))]

    with named_nats(argv) as port:
        yield port


def start_jobs(cluster: LocalCluster) -> dict[str, subprocess.Popen[bytes]]:
    """The bus-streams and migrate Jobs."""
    jobs = {}
    for name in ("bus-streams", "migrate"):
        proc, env = cluster.start(by_workload(cluster.docs, name), cluster.root / f"{name}.log")
        assert cluster.unmapped_hosts(env) == []
        jobs[name] = proc
    return jobs


def readiness_url(cluster: LocalCluster, c: Container) -> str:
    probe = c.spec["readinessProbe"]["httpGet"]
    named = {p.get("name", p["containerPort"]): p["containerPort"] for p in c.spec["ports"]}
    port = cluster.local_ports(c)[named.get(probe["port"], probe["port"])]
    return f"http://127.0.0.1:{port}{probe['path']}"


def wait_ready(procs: dict[str, tuple[subprocess.Popen[bytes], str]], logs: Path) -> dict[str, str]:
    """name -> why it is not ready (empty when all are), polling every probe together."""
    waiting = dict(procs)
    deadline = time.monotonic() + READY_WITHIN_S
    last: dict[str, str] = {}
    with httpx.Client(timeout=2.0) as http:
        while waiting and time.monotonic() < deadline:
            for name, (proc, url) in list(waiting.items()):
                if proc.poll() is not None:
                    last[name] = (
                        f"exited {proc.returncode}: {(logs / f'{name}.log').read_text()[-2000:]}"
                    )
                    del waiting[name]
                    continue
                try:
                    resp = http.get(url)
                    if resp.status_code == 200:
                        print("READY", name, time.monotonic() - deadline + READY_WITHIN_S)
                        del waiting[name]
                        last.pop(name, None)
                    else:
                        last[name] = f"{resp.status_code} {resp.text[:300]}"
                except httpx.HTTPError as exc:
                    last[name] = repr(exc)
            time.sleep(0.25)
    return {n: last.get(n, "not ready in time") for n in procs if n in waiting or n in last}


def stop(procs: dict[str, tuple[subprocess.Popen[bytes], str]]) -> None:
    for proc, _ in procs.values():
        proc.terminate()
    for proc, _ in procs.values():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_every_process_becomes_ready_with_its_manifest_environment(cluster: LocalCluster) -> None:
    """Everything applied at once, as `kubectl apply` of every file would: the processes
    wait (not ready) for the streams and their migrated databases, then become ready."""
    jobs = start_jobs(cluster)
    procs = {}
    try:
        for name in PROCESSES:
            c = by_workload(cluster.docs, name)
            proc, env = cluster.start(c, cluster.root / f"{name}.log")
            assert env[f"PM_{name.upper()}_ENVIRONMENT"] == "production"
            assert cluster.unmapped_hosts(env) == [], name
            procs[name] = (proc, readiness_url(cluster, c))
        for name, job in jobs.items():
            assert job.wait(READY_WITHIN_S) == 0, (cluster.root / f"{name}.log").read_text()[-3000:]
        assert wait_ready(procs, cluster.root) == {}
    finally:
        stop(procs)


def test_a_process_whose_manifest_lacks_a_required_secret_never_becomes_ready(
    cluster: LocalCluster,
) -> None:
    """The same start with identity's key-encryption secret taken out of its manifest:
    identity refuses to start in production, and the check sees it."""
    c = by_workload(cluster.docs, "identity")
    c.spec = {**c.spec, "env": [e for e in c.spec["env"] if "KEY_ENCRYPTION" not in e["name"]]}
    proc, _ = cluster.start(c, cluster.root / "identity.log")
    procs = {"identity": (proc, readiness_url(cluster, c))}
    try:
        failed = wait_ready(procs, cluster.root)
    finally:
        stop(procs)
    assert "PM_IDENTITY_KEY_ENCRYPTION_SECRET" in failed["identity"]
    assert failed["identity"].startswith("exited")
