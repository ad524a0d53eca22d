"""The deployment manifests, checked without a cluster or Docker: schemas, settings,
Secrets, hygiene, network flows, the Dockerfile. Each check is also shown failing on a
planted mistake, so a green run means the files are right, not that nothing was looked at."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy import bus
from tests.deploy.contract import compose_problems, k8s_problems
from tests.deploy.hygiene import compose_hygiene, k8s_hygiene
from tests.deploy.manifests import (
    DOCKERFILE,
    ROOT,
    load_compose,
    load_k8s,
    mutated,
    pod_spec,
    secret_template,
)
from tests.deploy.startup import sample_private_key

K8S_VERSION = "1.31.0"
COMPOSE_SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
COMPOSE_VARS = {
    "POSTGRES_PASSWORD": "pw",
    "SECRET_KEY": "test-secret-key",
    "KEY_ENCRYPTION_SECRET": "test-key-encryption",
    "PORTAL_CLIENT_SECRET": "test-portal-secret",
    "VAPID_PRIVATE_KEY": sample_private_key(),
}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return load_k8s()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def bus_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The keys of the bus's Secrets as `partnermesh nats render k8s` writes them."""
    out = tmp_path_factory.mktemp("render")
    bus.render("k8s", out)
    return {
        d["metadata"]["name"]: set(d["data"])
        for d in yaml.safe_load_all((out / "secrets.yaml").read_text())
    }


def workload(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(
        d for d in docs if d["kind"] in ("Deployment", "Job") and d["metadata"]["name"] == name
    )


def container_env(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = pod_spec(workload(docs, name))["containers"][0]["env"]
    return env


# -- schemas -----------------------------------------------------------------------------


def k8s_schema_errors(docs: list[dict[str, Any]]) -> list[str]:
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    return errors


def compose_schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]


class TestSchemas:
    def test_kubernetes_manifests_validate(self, docs: list[dict[str, Any]]) -> None:
        template = yaml.safe_load((ROOT / "deploy/k8s/examples/secret.yaml").read_text())
        assert len(docs) > 30
        assert k8s_schema_errors([*docs, template]) == []

    def test_kubernetes_validation_fails_on_a_misspelt_field(
        self, docs: list[dict[str, Any]]
    ) -> None:
        bad = mutated(workload(docs, "gateway"), lambda d: d["spec"].update(replica=2))
        errors = k8s_schema_errors([bad])
        assert len(errors) == 1 and "Deployment/gateway" in errors[0] and "replica" in errors[0]

    def test_compose_validates_against_the_compose_specification(
        self, compose: dict[str, Any]
    ) -> None:
        assert compose_schema_errors(compose) == []

    def test_compose_validation_fails_on_an_unknown_key(self, compose: dict[str, Any]) -> None:
        bad = mutated(compose, lambda d: d["services"]["gateway"].update(replicas=2))
        assert any("replicas" in e for e in compose_schema_errors(bad))
        bad = mutated(compose, lambda d: d["services"]["redis"].update(healthcheck={"test": 5}))
        assert compose_schema_errors(bad)


# -- settings and Secrets ----------------------------------------------------------------


class TestKubernetesSettings:
    def test_every_variable_and_secret_matches_what_the_processes_read(
        self, docs: list[dict[str, Any]], bus_keys: dict[str, set[str]]
    ) -> None:
        assert k8s_problems(docs, secret_template(), bus_keys) == []

    def test_a_misspelt_variable_is_found(
        self, docs: list[dict[str, Any]], bus_keys: dict[str, set[str]]
    ) -> None:
        def plant(d: list[dict[str, Any]]) -> None:
            container_env(d, "profile")[-1]["name"] = "PM_PROFILE_DATABSE_URL"

        problems = k8s_problems(mutated(docs, plant), secret_template(), bus_keys)
        assert "Deployment/profile: PM_PROFILE_DATABSE_URL is not a setting of profile" in problems
        assert "Deployment/profile: required PM_PROFILE_DATABASE_URL is not set" in problems

    def test_the_missing_key_encryption_secret_is_found(
        self, docs: list[dict[str, Any]], bus_keys: dict[str, set[str]]
    ) -> None:
        def plant(d: list[dict[str, Any]]) -> None:
            env = container_env(d, "identity")
            env[:] = [e for e in env if e["name"] != "PM_IDENTITY_KEY_ENCRYPTION_SECRET"]

        problems = k8s_problems(mutated(docs, plant), secret_template(), bus_keys)
        assert (
            "Deployment/identity: required PM_IDENTITY_KEY_ENCRYPTION_SECRET is not set" in problems
        )
        assert (
            "Secret template key identity-key-encryption-secret is read by no container" in problems
        )

    def test_secret_keys_the_template_lacks_are_found(
        self, docs: list[dict[str, Any]], bus_keys: dict[str, set[str]]
    ) -> None:
        template = secret_template()
        del template["portal-database-url"]
        problems = k8s_problems(docs, template, bus_keys)
        assert (
            "Deployment/portal: Secret key portal-database-url is not in the Secret template"
            in problems
        )
        assert (
            "Job/migrate: Secret key portal-database-url is not in the Secret template" in problems
        )

    def test_a_seed_file_that_is_not_mounted_is_found(
        self, docs: list[dict[str, Any]], bus_keys: dict[str, set[str]]
    ) -> None:
        def plant(d: list[dict[str, Any]]) -> None:
            volume = pod_spec(workload(d, "matching"))["volumes"][0]
            volume["secret"]["items"] = [{"key": "ca.pem", "path": "ca.pem"}]
            volume2 = pod_spec(workload(d, "gateway"))["volumes"][0]
            volume2["secret"]["items"][0]["key"] = "gateway.seed"

        problems = k8s_problems(mutated(docs, plant), secret_template(), bus_keys)
        assert (
            "Deployment/matching: PM_MATCHING_NATS_NKEY_SEED_FILE=/run/bus/matching.nk"
            " is not mounted" in problems
        )
        assert "Deployment/gateway: Secret bus-credentials has no key gateway.seed" in problems

    def test_a_missing_configmap_key_is_found(
        self, docs: list[dict[str, Any]], bus_keys: dict[str, set[str]]
    ) -> None:
        def plant(d: list[dict[str, Any]]) -> None:
            cm = next(
                x for x in d if x["kind"] == "ConfigMap" and x["metadata"]["name"] == "partnermesh"
            )
            del cm["data"]["redis-url"]

        problems = k8s_problems(mutated(docs, plant), secret_template(), bus_keys)
        assert "Deployment/gateway: ConfigMap key redis-url is missing" in problems


class TestComposeSettings:
    def test_every_variable_matches_and_the_settings_load(self, compose: dict[str, Any]) -> None:
        assert compose_problems(compose, COMPOSE_VARS) == []

    def test_planted_mistakes_are_found(self, compose: dict[str, Any]) -> None:
        def plant(d: dict[str, Any]) -> None:
            env = d["services"]["identity"]["environment"]
            del env["PM_IDENTITY_KEY_ENCRYPTION_SECRET"]
            env["PM_IDENTITY_ENVIROMENT"] = "production"
            d["services"]["portal"]["environment"]["PM_PORTAL_SECRET_KEY"] = "dev-only-not-a-secret"

        problems = compose_problems(mutated(compose, plant), COMPOSE_VARS)
        assert "identity: required PM_IDENTITY_KEY_ENCRYPTION_SECRET is not set" in problems
        assert "identity: PM_IDENTITY_ENVIROMENT is not a setting of identity" in problems
        assert any(p.startswith("identity: identity refuses its settings") for p in problems)
        assert any(p.startswith("portal: portal refuses its settings") for p in problems)


# -- hygiene -----------------------------------------------------------------------------


class TestHygiene:
    def test_kubernetes(self, docs: list[dict[str, Any]]) -> None:
        assert k8s_hygiene(docs) == []

    def test_kubernetes_mistakes_are_found(self, docs: list[dict[str, Any]]) -> None:
        def plant(d: list[dict[str, Any]]) -> None:
            gw = pod_spec(workload(d, "gateway"))["containers"][0]
            gw["image"] = "partnermesh:latest"
            del gw["resources"]["limits"]
            gw["securityContext"]["readOnlyRootFilesystem"] = False
            d[:] = [
                x
                for x in d
                if not (x["kind"] == "PodDisruptionBudget" and x["metadata"]["name"] == "profile")
            ]
            sts = next(x for x in d if x["kind"] == "StatefulSet")
            sts["spec"]["podManagementPolicy"] = "OrderedReady"
            svc = next(x for x in d if x["kind"] == "Service" and x["metadata"]["name"] == "nats")
            del svc["spec"]["publishNotReadyAddresses"]
            del pod_spec(sts)["containers"][0]["startupProbe"]
            d[:] = [x for x in d if x["metadata"]["name"] != "default-deny"]

        problems = k8s_hygiene(mutated(docs, plant))
        for expected in (
            "Deployment/gateway/gateway: image partnermesh:latest is not pinned to a version",
            "Deployment/gateway/gateway: no cpu limits",
            "Deployment/gateway/gateway: root filesystem writable or privilege escalation allowed",
            "Deployment/profile: replicated, no PodDisruptionBudget",
            "nats: pods are not started in parallel",
            "nats: the headless service does not publish not-ready addresses",
            "nats: the startup probe is not /healthz?js-enabled-only=true",
            "StatefulSet/nats/nats: no startupProbe",
            "no default-deny NetworkPolicy",
        ):
            assert expected in problems

    def test_a_probe_on_a_port_the_process_does_not_listen_on_is_found(
        self, docs: list[dict[str, Any]]
    ) -> None:
        def plant(d: list[dict[str, Any]]) -> None:
            portal = pod_spec(workload(d, "portal"))["containers"][0]
            next(e for e in portal["env"] if e["name"] == "PM_PORTAL_PORT")["value"] = "8083"

        problems = k8s_hygiene(mutated(docs, plant))
        assert problems == ["Deployment/portal/portal: PM_PORTAL_PORT=8083 is not a declared port"]

    def test_compose(self, compose: dict[str, Any]) -> None:
        assert compose_hygiene(compose) == []

    def test_compose_mistakes_are_found(self, compose: dict[str, Any]) -> None:
        def plant(d: dict[str, Any]) -> None:
            gw = d["services"]["gateway"]
            gw["deploy"]["replicas"] = 2
            gw["environment"]["PM_GATEWAY_IDENTITY_INTERNAL_URL"] = "http://localhost:8081"
            del d["services"]["redis"]["healthcheck"]
            d["services"]["profile"]["depends_on"] = ["migrate"]
            d["services"]["postgres"]["image"] = "postgres"

        problems = compose_hygiene(mutated(compose, plant))
        assert "gateway: 2 replicas cannot share host port 8080" in problems
        assert (
            "gateway: PM_GATEWAY_IDENTITY_INTERNAL_URL points at the container itself (http://localhost:8081)"
            in problems
        )
        assert "redis: no health check" in problems
        assert "profile: depends_on without a condition" in problems
        assert "postgres: image postgres is not pinned to a version" in problems


# -- the image ---------------------------------------------------------------------------


def dockerfile_problems(dockerfile: str, pyproject: dict[str, Any]) -> list[str]:
    """Every package pyproject.toml installs (and the files it needs) is copied in."""
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")} | {
        name
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for name in line.split()[1:-1]
    }
    needed = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed |= {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= set(pyproject["project"].get("license-files", []))  # the build reads them
    return [f"the image does not copy {n}" for n in sorted(needed - copied)]


class TestDockerfile:
    def test_copies_every_package_pyproject_installs(self) -> None:
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert dockerfile_problems(DOCKERFILE.read_text(), pyproject) == []
        packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
        assert {"portal*", "identity*", "gateway*", "services*"} <= set(packages)

    def test_a_package_left_out_is_found(self) -> None:
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        text = DOCKERFILE.read_text().replace("COPY portal portal\n", "")
        assert dockerfile_problems(text, pyproject) == ["the image does not copy portal"]
        text = DOCKERFILE.read_text().replace(" LICENSE ./", " ./")
        assert dockerfile_problems(text, pyproject) == ["the image does not copy LICENSE"]
