"""Clients generated from the running gateway's OpenAPI document come out whole, without a
warning, and the Python one works against the running mesh: a client-credentials token
from identity, the directory, a mashup, and a refusal without a token."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.portal.mesh import Mesh
from tests.sdk.conftest import Generated, npm_tools

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
# The lines openapi-typescript prints when all is well: its name, then source → output.
TS_BANNER = re.compile(r"^(✨ openapi-typescript \S+|🚀 \S+ → \S+ \[[\d.]+m?s\]|)$")
# Lines openapi-python-client always prints, that are not about the document.
PY_BANNER = re.compile(r"^(Generating .*|)$")


def generated_package(python_client: Generated) -> ModuleType:
    sys.path.insert(0, str(python_client.path.parent))
    try:
        return importlib.import_module("pmclient")
    finally:
        sys.path.remove(str(python_client.path.parent))


def northwind_token(mesh: Mesh) -> str:
    assert mesh.workdir is not None
    creds = json.loads((mesh.workdir / "demo-identity.json").read_text())
    client = creds["clients"]["northwind-backend"]
    resp = httpx.post(
        f"{mesh.issuer}/token",
        data={"grant_type": "client_credentials", "scope": "directory:read profile:read"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


class TestGeneration:
    def test_python_client_generates_without_a_warning(self, python_client: Generated) -> None:
        said = [line for line in python_client.output.splitlines() if not PY_BANNER.match(line)]
        assert said == [], python_client.output
        models = {p.stem for p in (python_client.path / "models").glob("*.py")}
        # AuditLog was dropped while two schemas were both called AuditEntry.
        assert {"audit_log", "verification_audit_entry", "introduction_history_entry"} <= models
        assert not any("contracts" in m for m in models)

    def test_python_client_has_every_operation(
        self, python_client: Generated, live_openapi: Path
    ) -> None:
        doc = json.loads(live_openapi.read_text())
        operations = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
        modules = {p.stem for p in (python_client.path / "api").rglob("*.py")} - {"__init__"}
        expected = {re.sub(r"[^a-z0-9]+", "_", o.lower()) for o in operations}
        assert modules == expected

    def test_typescript_types_generate_without_a_warning_and_compile(
        self, typescript_types: Generated
    ) -> None:
        said = [line for line in typescript_types.output.splitlines() if not TS_BANNER.match(line)]
        assert said == [], typescript_types.output
        text = typescript_types.path.read_text()
        assert "VerificationAuditEntry:" in text and "IntroductionHistoryEntry:" in text
        assert "contracts__" not in text
        checked = subprocess.run(
            [str(npm_tools() / "tsc"), "--noEmit", "--strict", str(typescript_types.path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


class TestPythonClientAgainstTheMesh:
    def test_directory_with_a_client_credentials_token(
        self, sdk_mesh: Mesh, python_client: Generated
    ) -> None:
        pm = generated_package(python_client)
        search = importlib.import_module("pmclient.api.profile.profile_directory_search")
        kind = importlib.import_module("pmclient.models.profile_directory_search_kind")
        page_model = importlib.import_module("pmclient.models.directory_page").DirectoryPage
        with pm.AuthenticatedClient(
            base_url=sdk_mesh.gateway_url, token=northwind_token(sdk_mesh)
        ) as client:
            page = search.sync(
                "acme", client=client, kind=kind.ProfileDirectorySearchKind.COMPANY, page_size=50
            )
        assert isinstance(page, page_model), page
        assert {"northwind", "contoso", "fabrikam"} <= {e.id for e in page.entries}
        assert page.total == len(page.entries)

    def test_mashup(self, sdk_mesh: Mesh, python_client: Generated) -> None:
        pm = generated_package(python_client)
        mashup = importlib.import_module("pmclient.api.gateway.gateway_mashup")
        models = importlib.import_module("pmclient.models")
        body = models.MashupRequest.from_dict(
            {
                "requests": [
                    {"id": "people", "path": "/v1/ecosystems/acme/directory"},
                    {
                        "id": "northwind",
                        "path": "/v1/ecosystems/acme/partners/northwind/profile",
                    },
                    {"id": "other-eco", "path": "/v1/ecosystems/globex/directory"},
                ]
            }
        )
        with pm.AuthenticatedClient(
            base_url=sdk_mesh.gateway_url, token=northwind_token(sdk_mesh)
        ) as client:
            reply = mashup.sync("acme", client=client, body=body)
        assert isinstance(reply, models.MashupReply), reply
        results = {r.id: r for r in reply.results}
        assert results["people"].status == 200 and results["people"].body["entries"]
        assert results["northwind"].status == 200
        assert results["northwind"].body["partner"] == "northwind"
        assert results["other-eco"].status == 403  # each sub-request authorised on its own
        assert reply.complete is False

    def test_without_a_token_the_problem_is_typed(
        self, sdk_mesh: Mesh, python_client: Generated
    ) -> None:
        pm = generated_package(python_client)
        search = importlib.import_module("pmclient.api.profile.profile_directory_search")
        problem = importlib.import_module("pmclient.models.problem").Problem
        with pm.Client(base_url=sdk_mesh.gateway_url) as client:
            resp = search.sync_detailed("acme", client=client)
        assert resp.status_code == 401
        assert isinstance(resp.parsed, problem) and resp.parsed.code == "unauthenticated"
