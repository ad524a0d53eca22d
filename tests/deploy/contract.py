"""Checks that the manifests give each process what its settings read, and all it needs.

Each function returns the problems it finds (empty: none). "Required" is what a process
cannot do without in production: no default there is right (a database, the bus's
credentials, a secret the settings refuse to leave at its development default, …).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from mesh.settings import DEV_SECRET
from tests.deploy.manifests import (
    BUS_PROCESSES,
    Container,
    config_map,
    containers,
    env_prefix,
    interpolate,
    process_of,
    secret_items,
    setting_names,
    settings_class,
)

BUS_FILES = "/run/bus/"


def production_required(process: str) -> set[str]:
    """The environment variables ``process`` must be given in production."""
    fields = settings_class(process).model_fields
    names = {"environment"} | {n for n, f in fields.items() if f.default == DEV_SECRET}
    if "database_url" in fields:
        names.add("database_url")
    if process in BUS_PROCESSES:
        names |= {"nats_url", "nats_nkey_seed_file", "nats_inbox_prefix", "nats_tls_ca_file"}
    if process != "identity":  # who trusts identity's tokens, and fetches its keys
        names |= {"identity_url", "identity_internal_url"}
    if process in ("identity", "portal"):  # the issuer; the portal's redirect address
        names.add("public_url")
    if "redis_url" in fields:  # replicas share DPoP replay and rate-limit state
        names.add("redis_url")
    if process == "portal":
        names |= {"gateway_url", "client_secret", "eco"}
    prefix = env_prefix(process)
    return {prefix + n.upper() for n in names}


def required_for(c_process: str, reads: list[str]) -> set[str]:
    if c_process == "migrate":
        return {env_prefix(p) + "DATABASE_URL" for p in reads}
    return set().union(*(production_required(p) for p in reads))


def name_problems(where: str, c_process: str, reads: list[str], names: set[str]) -> list[str]:
    """Every variable is a setting of the process; every required one is there."""
    known = set().union(*(setting_names(p) for p in reads)) if reads else set()
    problems = [
        f"{where}: {n} is not a setting of {'/'.join(reads) or c_process}"
        for n in sorted(names - known)
    ]
    problems += [
        f"{where}: required {n} is not set" for n in sorted(required_for(c_process, reads) - names)
    ]
    return problems


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ is exactly ``env`` (plus PATH) while the block runs."""
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update({"PATH": before.get("PATH", ""), **env})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def settings_problems(where: str, reads: list[str], env: dict[str, str]) -> list[str]:
    """The processes' settings load from exactly this environment (their validators
    refuse, e.g., a production secret left at its development default)."""
    problems = []
    with environment(env):
        for process in reads:
            try:
                settings_class(process)()
            except ValidationError as exc:
                problems.append(f"{where}: {process} refuses its settings: {exc}")
    return problems


# -- Kubernetes --------------------------------------------------------------------------


def _env_refs(
    c: Container, config: dict[str, str], template: set[str], used: set[str]
) -> list[str]:
    problems = []
    for item in c.env:
        ref = item.get("valueFrom", {})
        if "configMapKeyRef" in ref and ref["configMapKeyRef"]["key"] not in config:
            problems.append(
                f"{c.workload}: ConfigMap key {ref['configMapKeyRef']['key']} is missing"
            )
        if "secretKeyRef" in ref:
            key = ref["secretKeyRef"]["key"]
            used.add(key)
            if ref["secretKeyRef"]["name"] != "partnermesh" or key not in template:
                problems.append(f"{c.workload}: Secret key {key} is not in the Secret template")
    return problems


def _file_problems(c: Container, bus_keys: dict[str, set[str]]) -> list[str]:
    problems = []
    files = secret_items(c)
    for path, (secret, key) in files.items():
        if key not in bus_keys.get(secret, set()):
            problems.append(f"{c.workload}: Secret {secret} has no key {key}")
    for item in c.env:
        value = str(item.get("value", ""))
        if value.startswith(BUS_FILES) and value not in files:
            problems.append(f"{c.workload}: {item['name']}={value} is not mounted")
    return problems


def k8s_problems(
    docs: list[dict[str, Any]], template: dict[str, str], bus_keys: dict[str, set[str]]
) -> list[str]:
    """Env names, ConfigMap keys, Secret keys and mounted files of every container."""
    config = config_map(docs)
    problems: list[str] = []
    used: set[str] = set()
    for c in containers(docs):
        names = {item["name"] for item in c.env}
        if c.process == "bus-streams":  # a command's arguments, not settings
            command = " ".join(c.spec["command"])
            problems += [
                f"{c.workload}: {n} is not used" for n in names if f"$({n})" not in command
            ]
        elif c.process:  # not third-party servers (nats, redis)
            problems += name_problems(c.workload, c.process, c.reads, names)
        problems += _env_refs(c, config, set(template), used)
        problems += _file_problems(c, bus_keys)
    problems += [
        f"Secret template key {k} is read by no container" for k in sorted(set(template) - used)
    ]
    return problems


# -- compose -----------------------------------------------------------------------------


def compose_env(service: dict[str, Any], variables: dict[str, str]) -> dict[str, str]:
    return {
        k: interpolate(str(v), variables) for k, v in (service.get("environment") or {}).items()
    }


def compose_problems(doc: dict[str, Any], variables: dict[str, str]) -> list[str]:
    problems: list[str] = []
    for name, service in doc["services"].items():
        if "command" not in service or service.get("image", "").split(":")[0] != "partnermesh":
            continue
        process, reads = process_of(service["command"])
        env = service.get("environment") or {}
        if process == "bus-streams":
            problems += [f"{name}: {k} is not used" for k in env]
            continue
        problems += name_problems(name, process, reads, set(env))
        mounted = {str(v).split(":")[1] for v in service.get("volumes", [])}
        problems += [
            f"{name}: {k}={v} is not mounted"
            for k, v in env.items()
            if str(v).startswith(BUS_FILES) and v not in mounted
        ]
        if process != "migrate":
            problems += settings_problems(name, reads, compose_env(service, variables))
    return problems
