"""Reading the deployment manifests as an operator's tools would: which process each
container runs, the environment it is given, the Secrets and ConfigMaps it names.

Checks (``tests/deploy/contract.py``, ``tests/deploy/hygiene.py``) are functions from
parsed documents to a list of problems, so a test can show each one failing on a planted
mistake as well as passing on the real files.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SECRET_TEMPLATE = K8S / "examples" / "secret.yaml"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
NAMESPACE = "partnermesh"

# process -> settings class ("module:Class"); its env prefix comes from the class
SETTINGS = {
    "identity": "identity.settings:IdentitySettings",
    "gateway": "gateway.settings:GatewaySettings",
    "profile": "services.profile.settings:ProfileSettings",
    "matching": "services.matching.settings:MatchingSettings",
    "collaboration": "services.collaboration.settings:CollaborationSettings",
    "connector": "services.connector.settings:ConnectorSettings",
    "portal": "portal.settings:PortalSettings",
}
BUS_PROCESSES = ("identity", "gateway", "profile", "matching", "collaboration", "connector")
POD_KINDS = ("Deployment", "StatefulSet", "Job")


def settings_class(process: str) -> Any:
    module, cls = SETTINGS[process].split(":")
    return getattr(importlib.import_module(module), cls)


def env_prefix(process: str) -> str:
    return str(settings_class(process).model_config["env_prefix"])


def setting_names(process: str) -> set[str]:
    """Every environment variable ``process`` reads (its settings fields, prefixed)."""
    prefix = env_prefix(process)
    return {prefix + name.upper() for name in settings_class(process).model_fields}


def process_of(command: list[str]) -> tuple[str, list[str]]:
    """(what runs, the processes whose settings it reads) for a container command."""
    if command[:2] == ["python", "-m"] and len(command) > 2:
        module = command[2]
        if module == "deploy" and command[3:4] == ["migrate"]:
            return "migrate", command[4:]
        name = module.removeprefix("services.")
        if name in SETTINGS:
            return name, [name]
    if command[:3] == ["partnermesh", "nats", "streams"]:
        return "bus-streams", []
    raise ValueError(f"a command the checks do not know: {command}")


# -- Kubernetes --------------------------------------------------------------------------


def load_k8s(paths: list[Path] | None = None) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths or sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def secret_template() -> dict[str, str]:
    doc = yaml.safe_load(SECRET_TEMPLATE.read_text())
    return {str(k): str(v) for k, v in doc["stringData"].items()}


def config_map(docs: list[dict[str, Any]], name: str = NAMESPACE) -> dict[str, str]:
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == name:
            return {str(k): str(v) for k, v in doc["data"].items()}
    raise KeyError(f"no ConfigMap {name}")


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


@dataclass
class Container:
    """One container of a workload, as the manifest gives it."""

    workload: str  # "Deployment/gateway"
    doc: dict[str, Any]
    spec: dict[str, Any]
    process: str = ""
    reads: list[str] = field(default_factory=list)

    @property
    def env(self) -> list[dict[str, Any]]:
        return list(self.spec.get("env", []))

    def mounts(self) -> dict[str, dict[str, Any]]:
        """mountPath -> the pod volume mounted there."""
        volumes = {v["name"]: v for v in pod_spec(self.doc).get("volumes", [])}
        return {
            m["mountPath"]: volumes.get(m["name"], {}) for m in self.spec.get("volumeMounts", [])
        }


def containers(docs: list[dict[str, Any]]) -> Iterator[Container]:
    for doc in docs:
        if doc["kind"] not in POD_KINDS:
            continue
        for spec in pod_spec(doc)["containers"]:
            c = Container(f"{doc['kind']}/{doc['metadata']['name']}", doc, spec)
            if "command" in spec:
                c.process, c.reads = process_of(spec["command"])
            yield c


def resolve_env(
    c: Container,
    config: dict[str, str],
    secrets: dict[str, dict[str, str]],
) -> dict[str, str]:
    """The environment the container gets: values, ConfigMap and Secret references."""
    env = {}
    for item in c.env:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "configMapKeyRef" in ref:
            env[item["name"]] = config[ref["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in ref:
            sref = ref["secretKeyRef"]
            env[item["name"]] = secrets[sref["name"]][sref["key"]]
        elif "fieldRef" in ref:
            env[item["name"]] = f"field:{ref['fieldRef']['fieldPath']}"
    return env


def secret_items(c: Container) -> dict[str, tuple[str, str]]:
    """Files the container sees from Secrets: path -> (secret, key)."""
    files = {}
    for path, volume in c.mounts().items():
        secret = volume.get("secret")
        if secret:
            for item in secret["items"]:
                files[f"{path}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


# -- compose -----------------------------------------------------------------------------


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


INTERPOLATION = re.compile(r"\$\{([A-Z_]+)(?::?[-?][^}]*)?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` with ``variables``."""

    def one(m: re.Match[str]) -> str:
        name, rest = m.group(1), m.group(0)[len(m.group(1)) + 2 : -1]
        if name in variables:
            return variables[name]
        if rest.startswith((":-", "-")):
            return rest.split("-", 1)[1]
        raise KeyError(f"${{{name}}} is required")

    return INTERPOLATION.sub(one, value)


def mutated(docs: Any, change: Callable[[Any], None]) -> Any:
    """A deep copy of ``docs`` with ``change`` applied (planted mistakes)."""
    copied = copy.deepcopy(docs)
    change(copied)
    return copied
