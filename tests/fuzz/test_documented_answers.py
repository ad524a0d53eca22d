"""What the fuzzer does not reach on its own, checked against the served document too: the
edge's own answers (401, 400, 413, 415, 405 with Allow) and the date-times of real rows.

Each answer goes through the same schemathesis checks as the fuzzer's (a documented status,
a body matching the schema given for it); a 405 answers no documented operation, so its
problem document is checked against the Problem schema and its Allow header read.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import requests
import schemathesis

from tests.contracts.test_timestamps import is_rfc3339
from tests.fuzz.test_openapi_fuzz import CHECKS
from tests.portal.mesh import ECO, Mesh

pytestmark = pytest.mark.slow

WORKSPACES = "/v1/ecosystems/{eco}/workspaces"


@pytest.fixture(scope="module")
def served(fuzz_mesh: Mesh) -> Any:
    """The OpenAPI document as the running gateway serves it, loaded by schemathesis."""
    return schemathesis.openapi.from_url(
        f"{fuzz_mesh.gateway_url}/openapi.json", config=schemathesis.Config(seed=1)
    )


def conforms(served: Any, method: str, path: str, response: requests.Response) -> None:
    """``response`` passes the fuzzer's checks for the operation ``method path``."""
    case = served[path][method].Case(path_parameters={"eco": ECO})
    case.validate_response(response, checks=CHECKS)


def url(mesh: Mesh, path: str) -> str:
    return mesh.gateway_url + path.format(eco=ECO)


class TestEdgeAnswersAreDocumented:
    def test_no_token_is_a_documented_401(self, fuzz_mesh: Mesh, served: Any) -> None:
        r = requests.get(url(fuzz_mesh, WORKSPACES), timeout=10)
        assert r.status_code == 401
        conforms(served, "GET", WORKSPACES, r)

    def test_a_body_that_is_not_json_is_a_documented_415(
        self, fuzz_mesh: Mesh, served: Any
    ) -> None:
        r = requests.post(
            url(fuzz_mesh, WORKSPACES),
            data=b"title=x",
            headers={**fuzz_mesh.bearer("nadia"), "Content-Type": "text/plain"},
            timeout=10,
        )
        assert r.status_code == 415
        assert r.json()["code"] == "unsupported_media_type"
        conforms(served, "POST", WORKSPACES, r)

    def test_malformed_json_is_a_documented_400(self, fuzz_mesh: Mesh, served: Any) -> None:
        r = requests.post(
            url(fuzz_mesh, WORKSPACES),
            data=b'{"title": ',
            headers={**fuzz_mesh.bearer("nadia"), "Content-Type": "application/json"},
            timeout=10,
        )
        assert r.status_code == 400
        conforms(served, "POST", WORKSPACES, r)

    def test_a_body_past_the_limit_is_a_documented_413(self, fuzz_mesh: Mesh, served: Any) -> None:
        r = requests.post(
            url(fuzz_mesh, WORKSPACES),
            data=b'{"title": "' + b"x" * 1_100_000 + b'"}',
            headers={**fuzz_mesh.bearer("nadia"), "Content-Type": "application/json"},
            timeout=10,
        )
        assert r.status_code == 413
        conforms(served, "POST", WORKSPACES, r)

    def test_an_unserved_method_is_a_405_problem_naming_the_allowed_ones(
        self, fuzz_mesh: Mesh, served: Any
    ) -> None:
        r = requests.put(url(fuzz_mesh, WORKSPACES), headers=fuzz_mesh.bearer("nadia"), timeout=10)
        assert r.status_code == 405
        assert r.headers["Allow"] == "GET, HEAD, POST"
        doc = served.raw_schema
        assert "Allow" in doc["components"]["responses"]["MethodNotAllowed"]["headers"]
        assert r.headers["Content-Type"] == "application/problem+json"
        jsonschema.validate(r.json(), doc["components"]["schemas"]["Problem"])


def date_times(node: Any, key: str = "") -> list[Any]:
    """Every value of a ``*_at``/``at``/``time`` field in a JSON document (nulls left out)."""
    if isinstance(node, dict):
        return [v for k, item in node.items() for v in date_times(item, k)]
    if isinstance(node, list):
        return [v for item in node for v in date_times(item, key)]
    if key == "at" or key == "time" or key.endswith("_at"):
        return [] if node is None else [node]
    return []


class TestDateTimesOnTheWire:
    READS = (
        ("nadia", "/v1/ecosystems/{eco}/workspaces"),
        ("nadia", "/v1/ecosystems/{eco}/workspaces/{workspace}"),
        ("olivia", "/v1/ecosystems/{eco}/forums/categories"),
        ("olivia", "/v1/ecosystems/{eco}/forums/threads/{thread}"),
        ("olivia", "/v1/ecosystems/{eco}/forums/threads/{thread}/history"),
        ("bruno", "/v1/ecosystems/{eco}/introductions/{introduction}"),
    )

    @pytest.mark.parametrize(("who", "path"), READS, ids=[p for _, p in READS])
    def test_rows_read_back_from_sqlite_carry_an_offset(
        self, fuzz_mesh: Mesh, served: Any, who: str, path: str
    ) -> None:
        """Found by fuzzing: created_at and friends went out without a zone."""
        seeded = fuzz_mesh.seeded
        concrete = path.format(
            eco=ECO,
            workspace=seeded["workspace"],
            thread=seeded["thread"],
            introduction=seeded["intro"],
        )
        r = requests.get(
            fuzz_mesh.gateway_url + concrete, headers=fuzz_mesh.bearer(who), timeout=10
        )
        assert r.status_code == 200, r.text
        found = date_times(r.json())
        assert found, f"{concrete} carried no date-time"
        assert all(is_rfc3339(v) for v in found), found
        conforms(served, "GET", path, r)
