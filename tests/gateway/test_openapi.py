"""The OpenAPI 3.1 document: generated from the operations, complete, and internally consistent."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from contracts.errors import STATUS, ErrorCode
from contracts.policy import Operation
from contracts.registry import OPERATIONS
from gateway.openapi import PROBLEM_SCHEMA, build_openapi
from gateway.routes import RouteTable
from gateway.settings import GatewaySettings
from mesh.errors import MeshError
from mesh.problems import Problem
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
    def test_is_openapi_31_with_servers(self, doc: dict[str, Any]) -> None:
        assert doc["openapi"] == "3.1.0"
        assert doc["servers"] == [{"url": "https://api.example"}]

    @pytest.mark.parametrize("op", (*OPERATIONS, *SYNTHETIC), ids=lambda op: op.name)
    def test_every_operation_is_documented_with_its_policy(
        self, doc: dict[str, Any], op: Operation
    ) -> None:
        entry = doc["paths"][op.path][op.method.lower()]
        assert entry["operationId"] == op.name
        assert entry["x-partnermesh-policy"] == op.policy.describe()
        assert entry["x-partnermesh-subject"] == op.subject
        assert op.policy.scope is not None
        scopes = [op.policy.scope.value]
        expected = [] if op.policy.public else [{"bearer": scopes}, {"dpop": scopes}]
        assert entry["security"] == expected
        assert str(op.status) in entry["responses"]
        for status in ("401", "403", "422", "429", "503", "504"):
            assert status in entry["responses"]

    def test_path_params_are_required_path_parameters(self, doc: dict[str, Any]) -> None:
        entry = doc["paths"]["/v1/ecosystems/{eco}/partners/{partner}/private"]["get"]
        where = {(p["name"], p["in"]) for p in entry["parameters"]}
        assert {("eco", "path"), ("partner", "path"), ("note", "query")} == where
        assert all(p["required"] for p in entry["parameters"] if p["in"] == "path")

    def test_body_leaves_out_what_the_path_carries(self, doc: dict[str, Any]) -> None:
        entry = doc["paths"]["/v1/ecosystems/{eco}/partners/{partner}/settings"]["put"]
        schema = entry["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == {"note"}
        assert "413" in entry["responses"]

    def test_problems_use_the_problem_media_type(self, doc: dict[str, Any]) -> None:
        problem = doc["components"]["responses"]["Forbidden"]["content"]
        assert problem == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }

    def test_every_reference_resolves(self, doc: dict[str, Any]) -> None:
        for ref in refs(doc):
            node: Any = doc
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            assert node, ref

    def test_mashup_is_documented(self, doc: dict[str, Any]) -> None:
        entry = doc["paths"]["/v1/ecosystems/{eco}/mashup"]["post"]
        assert entry["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "MashupRequest"
        )

    def test_bearer_scheme(self, doc: dict[str, Any]) -> None:
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

    def test_dpop_scheme(self, doc: dict[str, Any]) -> None:
        assert doc["components"]["securitySchemes"]["dpop"]["scheme"] == "DPoP"


EVERY_OPERATION = {"400", "401", "403", "404", "409", "422", "429", "500", "503", "504"}


def problem_of(doc: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    name = response["$ref"].rsplit("/", 1)[-1]
    problem: dict[str, Any] = doc["components"]["responses"][name]
    return problem


class TestProblemsDocumented:
    """Every status the gateway can answer for an operation is in its responses, as a
    problem document (so a client, and the fuzzer's status check, can rely on the list)."""

    @pytest.mark.parametrize("op", (*OPERATIONS, *SYNTHETIC), ids=lambda op: op.name)
    def test_each_operation_lists_the_problems_it_can_answer(
        self, doc: dict[str, Any], op: Operation
    ) -> None:
        responses = doc["paths"][op.path][op.method.lower()]["responses"]
        expected = set(EVERY_OPERATION)
        if op.method in {"POST", "PUT", "PATCH", "DELETE"}:
            expected |= {"413", "415"}  # the body: too large, not JSON
        if "expected_version" in op.request.model_fields:
            expected.add("412")
        if op.service == "connector":
            expected.add("502")
        assert set(responses) - {str(op.status)} == expected
        for status in expected:
            problem = problem_of(doc, responses[status])
            assert set(problem["content"]) == {"application/problem+json"}

    def test_a_405_is_a_component_with_allow_not_an_operation_answer(
        self, doc: dict[str, Any]
    ) -> None:
        problem = doc["components"]["responses"]["MethodNotAllowed"]
        assert "Allow" in problem["headers"]
        answers = {
            s for path in doc["paths"].values() for e in path.values() for s in e["responses"]
        }
        assert "405" not in answers

    def test_a_401_describes_its_challenge_and_a_429_its_quota_headers(
        self, doc: dict[str, Any]
    ) -> None:
        responses = doc["components"]["responses"]
        assert "WWW-Authenticate" in responses["Unauthenticated"]["headers"]
        assert {"RateLimit", "RateLimit-Policy", "Retry-After"} <= set(
            responses["RateLimited"]["headers"]
        )

    def test_every_status_an_error_code_maps_to_is_documented(self, doc: dict[str, Any]) -> None:
        documented = {
            s for path in doc["paths"].values() for e in path.values() for s in e["responses"]
        }
        raised_nowhere = {ErrorCode.GONE}  # no process answers 410 yet
        for code in set(ErrorCode) - raised_nowhere:
            assert str(STATUS[code]) in documented, code

    @pytest.mark.parametrize("code", list(ErrorCode))
    def test_each_coded_problem_matches_the_problem_schema(self, code: ErrorCode) -> None:
        err = MeshError(code, "d", [{"loc": ["x"]}])
        problem = Problem.of(err, "/v1/x").doc("rid-1")
        jsonschema.validate(problem, PROBLEM_SCHEMA)

    @pytest.mark.parametrize("status", [405, 415])
    def test_edge_problems_match_the_problem_schema(self, status: int) -> None:
        jsonschema.validate(Problem.for_status(status, "d", "/v1/x").doc("rid-1"), PROBLEM_SCHEMA)


class TestServed:
    async def test_gateway_serves_the_document(self, gateway: httpx.AsyncClient) -> None:
        r = await gateway.get("/openapi.json")
        assert r.status_code == 200
        served = r.json()
        assert {op.path for op in OPERATIONS} <= set(served["paths"])
