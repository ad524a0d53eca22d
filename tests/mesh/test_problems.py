"""The one RFC 9457 builder (mesh.problems): the documents it makes, and the error
handlers it installs, exercised over HTTP on real Starlette and FastAPI apps."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from contracts.errors import PROBLEM_TYPE_BASE, ErrorCode
from mesh import context
from mesh.errors import MeshError
from mesh.problems import PROBLEM_JSON, Problem, install, internal_error

SECRET = "secret internals: db password hunter2"


class Boom(Exception):
    pass


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=10)
    stars: int = Field(ge=0, le=5)


def _api() -> FastAPI:
    app = FastAPI()
    install(app)

    @app.get("/things/{name}")
    async def thing(name: str) -> dict[str, str]:
        if name == "hidden":
            raise MeshError(ErrorCode.NOT_FOUND, "thing not found")
        if name == "busy":
            raise MeshError(ErrorCode.OVERLOADED, "at capacity")
        if name == "challenged":
            err = MeshError(ErrorCode.UNAUTHENTICATED, "a token is needed")
            err.headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            raise err
        if name == "boom":
            raise Boom(SECRET)
        return {"name": name}

    @app.post("/notes")
    async def note(body: Note) -> dict[str, str]:
        return {"text": body.text}

    return app


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """A FastAPI app with the shared handlers, over HTTP (server errors answered, not raised)."""
    transport = httpx.ASGITransport(_api(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM_JSON
    doc: dict[str, Any] = resp.json()
    assert doc["status"] == status and doc["code"] == code
    assert doc["type"] == PROBLEM_TYPE_BASE + code
    assert doc["request_id"] == resp.headers["x-request-id"]
    return doc


class TestDocument:
    def test_a_coded_error_is_its_document(self) -> None:
        errors = [{"loc": ["body", "x"], "msg": "too long", "type": "string_too_long"}]
        err = MeshError(ErrorCode.VALIDATION_FAILED, "no good", errors)
        assert Problem.of(err, "/v1/x").doc("rid-1") == {
            "type": PROBLEM_TYPE_BASE + "validation_failed",
            "title": "Validation failed",
            "status": 422,
            "code": "validation_failed",
            "detail": "no good",
            "instance": "/v1/x",
            "errors": errors,
            "request_id": "rid-1",
        }

    def test_empty_members_are_left_out(self) -> None:
        doc = Problem.of(MeshError(ErrorCode.FORBIDDEN)).doc()
        assert set(doc) == {"type", "title", "status", "code"}

    def test_an_overloaded_refusal_says_when_to_come_back(self) -> None:
        busy = Problem.of(MeshError(ErrorCode.OVERLOADED, "full"), headers={"RateLimit": "r"})
        assert busy.status == 503 and busy.headers == {"RateLimit": "r", "Retry-After": "1"}
        unavailable = Problem.of(MeshError(ErrorCode.UNAVAILABLE, "down"))
        assert unavailable.status == 503 and "Retry-After" not in unavailable.headers

    def test_the_errors_own_header_fields_win(self) -> None:
        err = MeshError(ErrorCode.UNAUTHENTICATED, "no")
        err.headers = {"WWW-Authenticate": "DPoP", "DPoP-Nonce": "n1"}
        problem = Problem.of(err, headers={"WWW-Authenticate": "Bearer", "RateLimit": "r"})
        assert problem.headers == {"WWW-Authenticate": "DPoP", "DPoP-Nonce": "n1", "RateLimit": "r"}

    @pytest.mark.parametrize(
        ("status", "code", "title"),
        [
            (404, "not_found", "Not found"),
            (400, "bad_request", "Bad request"),
            (503, "unavailable", "Service unavailable"),
            (405, "method_not_allowed", "Method not allowed"),
            (406, "not_acceptable", "Not acceptable"),
            (415, "unsupported_media_type", "Unsupported media type"),
            (599, "error", "Error"),
        ],
    )
    def test_a_status_is_named_by_its_code_else_its_phrase(
        self, status: int, code: str, title: str
    ) -> None:
        problem = Problem.for_status(status, "d", "/p", {"Allow": "GET"})
        assert problem.doc() == {
            "type": PROBLEM_TYPE_BASE + code,
            "title": title,
            "status": status,
            "code": code,
            "detail": "d",
            "instance": "/p",
        }
        assert problem.headers == {"Allow": "GET"}

    def test_without_a_code_the_type_is_about_blank(self) -> None:
        problem = Problem(503, "Not ready", detail="db: down", members={"reasons": ["db: down"]})
        assert problem.doc() == {
            "type": "about:blank",
            "title": "Not ready",
            "status": 503,
            "detail": "db: down",
            "reasons": ["db: down"],
        }

    def test_the_body_is_compact_ascii_json_whatever_the_caller_sent(self) -> None:
        errors = [{"loc": ["body", "\ud800"], "msg": "Extra inputs", "type": "extra_forbidden"}]
        err = MeshError(ErrorCode.VALIDATION_FAILED, "déjà vu", errors)
        body = Problem.of(err, "/caf\u00e9/\udcff").json("r")
        assert body.isascii() and b", " not in body and b": " not in body
        doc = json.loads(body)
        assert doc["detail"] == "déjà vu" and doc["instance"] == "/caf\u00e9/\udcff"
        assert doc["errors"][0]["loc"] == ["body", "\ud800"]

    def test_an_internal_error_shows_only_the_request_id(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        token = context.request_id.set("rid-42")
        try:
            with caplog.at_level(logging.ERROR, logger="mesh.problems"):
                try:
                    raise Boom(SECRET)
                except Boom as exc:
                    err = internal_error("/where", exc)
        finally:
            context.request_id.reset(token)
        assert err.code is ErrorCode.INTERNAL and err.detail == "internal error (request id rid-42)"
        (record,) = [r for r in caplog.records if getattr(r, "request_id", None) == "rid-42"]
        assert record.exc_info and record.exc_info[0] is Boom
        assert getattr(record, "where", None) == "/where"


class TestInstalledOnFastAPI:
    async def test_a_mesh_error_is_its_problem(self, api: httpx.AsyncClient) -> None:
        resp = await api.get("/things/hidden", headers={"X-Request-Id": "req-1"})
        doc = assert_problem(resp, 404, "not_found")
        assert doc["detail"] == "thing not found" and doc["instance"] == "/things/hidden"
        assert doc["request_id"] == "req-1"

    async def test_a_success_is_untouched(self, api: httpx.AsyncClient) -> None:
        resp = await api.get("/things/shown")
        assert resp.status_code == 200 and resp.json() == {"name": "shown"}
        assert "x-request-id" not in resp.headers

    async def test_overloaded_carries_retry_after(self, api: httpx.AsyncClient) -> None:
        resp = await api.get("/things/busy")
        assert_problem(resp, 503, "overloaded")
        assert resp.headers["retry-after"] == "1"

    async def test_an_errors_challenge_is_sent(self, api: httpx.AsyncClient) -> None:
        resp = await api.get("/things/challenged")
        assert_problem(resp, 401, "unauthenticated")
        assert resp.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    async def test_a_body_off_its_schema_is_a_validation_problem(
        self, api: httpx.AsyncClient
    ) -> None:
        resp = await api.post("/notes", json={"text": "far too long a note", "stars": 9})
        doc = assert_problem(resp, 422, "validation_failed")
        assert {tuple(e["loc"]) for e in doc["errors"]} == {("body", "text"), ("body", "stars")}
        assert all(set(e) == {"loc", "msg", "type"} for e in doc["errors"])  # no input echoed
        assert "far too long" not in resp.text

    async def test_an_unknown_field_is_named_and_its_value_not_echoed(
        self, api: httpx.AsyncClient
    ) -> None:
        resp = await api.post("/notes", json={"text": "hi", "stars": 1, "zz": SECRET})
        doc = assert_problem(resp, 422, "validation_failed")
        assert [e["loc"] for e in doc["errors"]] == [["body", "zz"]]
        assert "hunter2" not in resp.text

    async def test_a_body_that_is_not_json_is_a_bad_request(self, api: httpx.AsyncClient) -> None:
        resp = await api.post(
            "/notes", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert resp.status_code in (400, 422)
        assert resp.headers["content-type"] == PROBLEM_JSON

    async def test_an_unknown_route_is_not_found(self, api: httpx.AsyncClient) -> None:
        doc = assert_problem(await api.get("/no/such/route"), 404, "not_found")
        assert doc["title"] == "Not found" and doc["instance"] == "/no/such/route"

    async def test_a_method_the_route_lacks_names_the_allowed_ones(
        self, api: httpx.AsyncClient
    ) -> None:
        resp = await api.delete("/notes")
        assert_problem(resp, 405, "method_not_allowed")
        assert resp.headers["allow"] == "POST"

    async def test_an_unexpected_error_is_a_500_naming_only_the_request_id(
        self, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.ERROR, logger="mesh.problems"):
            resp = await api.get("/things/boom", headers={"X-Request-Id": "boom-7"})
        doc = assert_problem(resp, 500, "internal")
        assert doc["detail"] == "internal error (request id boom-7)"
        assert "hunter2" not in resp.text and "Traceback" not in resp.text
        logged = [r for r in caplog.records if getattr(r, "request_id", None) == "boom-7"]
        assert logged and logged[0].exc_info and logged[0].exc_info[0] is Boom
        assert getattr(logged[0], "method", None) == "GET"

    async def test_an_insane_request_id_is_replaced(self, api: httpx.AsyncClient) -> None:
        resp = await api.get("/things/hidden", headers={"X-Request-Id": "a b<script>"})
        doc = assert_problem(resp, 404, "not_found")
        assert doc["request_id"] != "a b<script>" and "<script>" not in resp.text


class TestInstalledOnStarlette:
    async def test_a_starlette_app_with_its_own_render(self) -> None:
        """A process that answers browsers with a page passes its own render; every kind of
        error goes through it."""
        seen: list[Problem] = []

        def page(_request: Request, problem: Problem, rid: str) -> Response:
            seen.append(problem)
            headers = {**problem.headers, "X-Request-Id": rid}
            return HTMLResponse(f"<h1>{problem.title}</h1>", problem.status, headers)

        async def fails(_request: Request) -> Response:
            raise MeshError(ErrorCode.FORBIDDEN, "not yours")

        async def crashes(_request: Request) -> Response:
            raise Boom(SECRET)

        async def fine(_request: Request) -> Response:
            return PlainTextResponse("ok")

        app = Starlette(
            routes=[
                Route("/fails", fails),
                Route("/crashes", crashes),
                Route("/fine", fine, methods=["GET"]),
            ]
        )
        install(app, page)
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://s.test") as client:
            forbidden = await client.get("/fails")
            crashed = await client.get("/crashes")
            missing = await client.get("/nowhere")
            wrong = await client.post("/fine")
            ok = await client.get("/fine")
        assert [(r.status_code, r.text) for r in (forbidden, crashed, missing, wrong)] == [
            (403, "<h1>Forbidden</h1>"),
            (500, "<h1>Internal error</h1>"),
            (404, "<h1>Not found</h1>"),
            (405, "<h1>Method not allowed</h1>"),
        ]
        assert all(r.headers["content-type"].startswith("text/html") for r in (forbidden, wrong))
        assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"}
        assert [p.code for p in seen] == [
            "forbidden",
            "internal",
            "not_found",
            "method_not_allowed",
        ]
        assert "hunter2" not in crashed.text
        assert ok.status_code == 200 and ok.text == "ok" and len(seen) == 4
