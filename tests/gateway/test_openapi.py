"""The OpenAPI 3.1 document: generated from the operations, complete, and internally consistent."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.registry import OPERATIONS
from gateway.openapi import build_openapi
from gateway.routes import RouteTable
from gateway.settings import GatewaySettings
from tests.gateway.matrix_support import SYNTHETIC


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The document for the registry plus synthetic operations with body and partner params."""
    return build_openapi(
        RouteTable((*OPERATIONS, *SYNTHETIC)), GatewaySettings(public_url="https://api.example")
    )


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


class TestDocument:
    def test_is_openapi_31_with_servers(self, doc):
        assert doc["openapi"] == "3.1.0"
        assert doc["servers"] == [{"url": "https://api.example"}]

    @pytest.mark.parametrize("op", (*OPERATIONS, *SYNTHETIC), ids=lambda op: op.name)
    def test_every_operation_is_documented_with_its_policy(self, doc, op):
        entry = doc["paths"][op.path][op.method.lower()]
        assert entry["operationId"] == op.name
        assert entry["x-partnermesh-policy"] == op.policy.describe()
        assert entry["x-partnermesh-subject"] == op.subject
        scopes = [op.policy.scope.value]
        expected = [] if op.policy.public else [{"bearer": scopes}, {"dpop": scopes}]
        assert entry["security"] == expected
        assert str(op.status) in entry["responses"]
        for status in ("401", "403", "422", "429", "503", "504"):
            assert status in entry["responses"]

    def test_path_params_are_required_path_parameters(self, doc):
        entry = doc["paths"]["/v1/ecosystems/{eco}/partners/{partner}/private"]["get"]
        where = {(p["name"], p["in"]) for p in entry["parameters"]}
        assert {("eco", "path"), ("partner", "path"), ("note", "query")} == where
        assert all(p["required"] for p in entry["parameters"] if p["in"] == "path")

    def test_body_leaves_out_what_the_path_carries(self, doc):
        entry = doc["paths"]["/v1/ecosystems/{eco}/partners/{partner}/settings"]["put"]
        schema = entry["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == {"note"}
        assert "413" in entry["responses"]

    def test_problems_use_the_problem_media_type(self, doc):
        problem = doc["components"]["responses"]["Forbidden"]["content"]
        assert problem == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }

    def test_every_reference_resolves(self, doc):
        for ref in refs(doc):
            node: Any = doc
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            assert node, ref

    def test_mashup_is_documented(self, doc):
        entry = doc["paths"]["/v1/ecosystems/{eco}/mashup"]["post"]
        assert entry["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "MashupRequest"
        )

    def test_bearer_scheme(self, doc):
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    def test_dpop_scheme(self, doc):
        assert doc["components"]["securitySchemes"]["dpop"]["scheme"] == "DPoP"


class TestServed:
    async def test_gateway_serves_the_document(self, gateway):
        r = await gateway.get("/openapi.json")
        assert r.status_code == 200
        served = r.json()
        assert {op.path for op in OPERATIONS} <= set(served["paths"])
