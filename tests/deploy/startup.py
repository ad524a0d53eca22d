"""Running the Kubernetes manifests' containers as local processes, with exactly the
environment each manifest gives its container.

What a cluster would provide is replaced by real local parts, and nothing else changes:

- Secrets: the bus's as ``partnermesh nats render k8s`` writes them (for a server
  certificate naming 127.0.0.1), Secret ``partnermesh`` from its template with test
  values (SQLite databases under the test's directory);
- the cluster's names (``nats-N.nats``, ``identity``, ``redis``, the public example
  hosts) become the test's servers on loopback;
- a container port becomes a free local port (``*_PORT`` values and probes follow);
- the streams are made with one replica (the test's cluster is one node);
- a mounted Secret or emptyDir becomes a directory of the test (paths in values follow),
  and the image's own ``ENV`` (deploy/Dockerfile) applies as in the image.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deploy import bus
from deploy.natsconf import Node, Tls, authorization, server_conf
from deploy.natskeys import Keyring, ensure_tls
from mesh.localnats import free_port
from tests.deploy.manifests import DOCKERFILE, Container, config_map, resolve_env, secret_template

CLUSTER_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://([^/:@,]+)")


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV lines (``/tmp`` is the container's emptyDir: ``root/tmp``)."""
    env: dict[str, str] = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def sample_private_key() -> str:
    """A P-256 key as PKCS#8 PEM, what the Secret's ``*-private-key`` entries hold."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


def bus_secrets(render: Path) -> dict[str, dict[str, bytes]]:
    """Secrets nats-server and bus-credentials, rendered for a server on 127.0.0.1."""
    keyring = Keyring(render / "creds").ensure()
    (render / "auth.conf").write_text(authorization(keyring))
    ensure_tls(render / "tls", ["localhost", "127.0.0.1"])
    docs = yaml.safe_load_all(bus.k8s_secrets(render, keyring))
    return {
        d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in d["data"].items()} for d in docs
    }


def nats_conf(render: Path, port: int, monitor: int, name: str = "nats-0") -> Path:
    """One node with the rendered authorization and TLS (the test's cluster is one node)."""
    node = Node(name, f"127.0.0.1:{port}", str(render / "js"), http=f"127.0.0.1:{monitor}")
    conf = render / "nats.conf"
    conf.write_text(server_conf(node, bus.INCLUDE, Tls(str(render / "tls"))))
    return conf


@dataclass
class LocalCluster:
    root: Path
    docs: list[dict[str, Any]]
    hosts: dict[str, str] = field(default_factory=dict)  # cluster URL prefix -> local
    secrets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    ports: dict[str, dict[int, int]] = field(default_factory=dict)  # workload -> map

    def partnermesh_secret(self) -> dict[str, str]:
        values = {}
        for key in secret_template():
            if key.endswith("-database-url"):
                name = key.removesuffix("-database-url")
                values[key] = f"sqlite+aiosqlite:///{self.root / 'db' / name}.db"
            elif key.endswith("-private-key"):
                values[key] = sample_private_key()
            else:
                values[key] = f"test-{key}-value"
        (self.root / "db").mkdir(exist_ok=True)
        return values

    def local_ports(self, c: Container) -> dict[int, int]:
        return self.ports.setdefault(
            c.workload, {p["containerPort"]: free_port() for p in c.spec.get("ports", [])}
        )

    def rewrite(self, value: str) -> str:
        for cluster, local in self.hosts.items():
            value = value.replace(cluster, local)
        return value

    def env(self, c: Container) -> dict[str, str]:
        """Exactly the container's environment, made local (module docstring)."""
        pod = self.root / "pods" / c.workload.replace("/", "-")
        secrets = {name: {k: v.decode() for k, v in d.items()} for name, d in self.secrets.items()}
        secrets["partnermesh"] = self.partnermesh_secret()
        env = {**image_env(), **resolve_env(c, config_map(self.docs), secrets)}
        ports = {str(k): str(v) for k, v in self.local_ports(c).items()}
        for key, value in list(env.items()):
            value = self.rewrite(value)
            if key.endswith("_PORT") and value in ports:
                value = ports[value]
            env[key] = value
        self.mount(c, pod)
        return {k: self.local_path(pod, v) for k, v in env.items()}

    def local_path(self, pod: Path, value: str) -> str:
        for prefix in ("/run/", "/tmp"):
            if value.startswith(prefix):
                return str(pod) + value
        return value

    def mount(self, c: Container, pod: Path) -> None:
        for path, volume in c.mounts().items():
            local = Path(str(pod) + path)
            local.mkdir(parents=True, exist_ok=True)
            for item in volume.get("secret", {}).get("items", []):
                target = local / item["path"]
                target.write_bytes(self.secrets[volume["secret"]["secretName"]][item["key"]])
                target.chmod(0o600)

    def command(self, c: Container, env: dict[str, str]) -> list[str]:
        """The container's command, its $(VAR) references expanded as the kubelet does;
        ``python`` and ``partnermesh`` are this environment's."""
        bindir = Path(sys.executable).parent
        pod = self.root / "pods" / c.workload.replace("/", "-")
        argv = [
            self.local_path(pod, re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a))
            for a in c.spec["command"]
        ]
        if "--replicas" in argv:  # the streams' replicas: the test's cluster is one node
            argv[argv.index("--replicas") + 1] = "1"
        if argv[0] == "python":
            argv[0] = sys.executable
        elif argv[0] == "partnermesh":
            argv[0] = str(bindir / "partnermesh")
        return argv

    def unmapped_hosts(self, env: dict[str, str]) -> list[str]:
        """Values still naming a cluster host (a name the test does not know yet)."""
        left = []
        for key, value in env.items():
            for url in value.split(","):
                m = CLUSTER_HOST.match(url)
                if m and m.group(1) != "127.0.0.1":
                    left.append(f"{key}={value}")
        return left

    def start(self, c: Container, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
        env = self.env(c)
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                self.command(c, env),
                env={"PATH": "/usr/bin:/bin", **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
            )
        return proc, env
