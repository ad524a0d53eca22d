"""The route tree: matching as an ordered list of routes would, in the depth of the path."""

from __future__ import annotations

import re

import httpx
import pytest

from contracts.registry import OPERATIONS
from gateway.routes import BoundRoute, PathTree, RouteConfigError, RouteTable, check_operation
from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer
from tests.support.tokens import TokenFactory

ECHO = "/v1/ecosystems/acme/echo"


def tree(*routes: tuple[str, str]) -> PathTree:
    t = PathTree()
    for method, path in routes:
        t.add(method, path, f"{method} {path}")
    return t


class TestPathTree:
    def test_parameters_are_whole_non_empty_segments(self) -> None:
        t = tree(("GET", "/a/{x}/c"))
        assert t.match("GET", "/a/b/c") == ("GET /a/{x}/c", ("b",))
        for path in ("/a//c", "/a/b/c/", "/a/b", "/a/b/c/d", "a/b/c"):
            with pytest.raises(LookupError):
                t.match("GET", path)

    def test_the_first_registered_route_wins(self) -> None:
        literal_first = tree(("GET", "/p/me"), ("GET", "/p/{id}"))
        assert literal_first.match("GET", "/p/me") == ("GET /p/me", ())
        param_first = tree(("GET", "/p/{id}"), ("GET", "/p/me"))
        assert param_first.match("GET", "/p/me") == ("GET /p/{id}", ("me",))
        assert param_first.match("GET", "/p/42") == ("GET /p/{id}", ("42",))

    def test_another_method_on_a_routed_path_is_none_and_get_answers_head(self) -> None:
        t = tree(("GET", "/a/{x}"), ("POST", "/a/b"))
        assert t.match("PUT", "/a/b") is None
        assert t.match("POST", "/a/b") == ("POST /a/b", ())
        assert t.match("HEAD", "/a/z") == ("GET /a/{x}", ("z",))

    def test_allowed_names_every_method_of_every_route_matching_the_path(self) -> None:
        t = tree(("GET", "/a/{x}"), ("POST", "/a/b"), ("DELETE", "/a/{x}"), ("PUT", "/c"))
        assert t.allowed("/a/b") == ["DELETE", "GET", "HEAD", "POST"]
        assert t.allowed("/a/z") == ["DELETE", "GET", "HEAD"]
        assert t.allowed("/c") == ["PUT"]
        assert t.allowed("/nothing") == []

    def test_answers_are_the_same_from_the_cache(self) -> None:
        t = tree(("GET", "/a/{x}"))
        first = t.match("GET", "/a/1")
        assert t.match("GET", "/a/1") == first
        with pytest.raises(LookupError):
            t.match("GET", "/b")
        with pytest.raises(LookupError):
            t.match("GET", "/b")

    def test_it_agrees_with_a_linear_scan_over_every_operation(self) -> None:
        """The oracle: the first operation, in registry order, whose path regex matches."""
        table = RouteTable(OPERATIONS)

        def scan(method: str, path: str) -> tuple[BoundRoute, dict[str, str]] | None:
            for bound in table.routes:
                pattern = re.sub(r"{[a-zA-Z_][a-zA-Z0-9_]*}", "([^/]+)", bound.op.path)
                found = re.fullmatch(pattern, path)
                if found and bound.op.method == method:
                    return bound, dict(zip(bound.path_params, found.groups(), strict=True))
            return None

        for bound in table.routes:
            path = bound.op.path
            for i, name in enumerate(bound.path_params):
                path = path.replace("{" + name + "}", ("me", "x1", "acme")[i % 3])
            assert table.match(bound.op.method, path) == scan(bound.op.method, path)

    def test_a_parameter_inside_a_segment_is_refused(self) -> None:
        import dataclasses

        from contracts.v1 import system

        partial = dataclasses.replace(system.ECHO, path="/v1/ecosystems/{eco}/echo.{fmt}")
        with pytest.raises(RouteConfigError):
            check_operation(partial)


class TestOverHttp:
    async def test_head_of_a_get_route_is_served_without_a_body(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        r = await gateway.head(ECHO, headers=bearer(tokens.mint()))
        assert r.status_code == 200 and r.content == b""
        assert r.headers["x-content-type-options"] == "nosniff"

    async def test_a_trailing_slash_redirects_to_the_routed_path(
        self, gateway: httpx.AsyncClient
    ) -> None:
        r = await gateway.get(ECHO + "/?message=x")
        assert r.status_code == 307
        assert r.headers["location"].endswith(ECHO + "?message=x")

    async def test_an_unrouted_trailing_slash_is_404(self, gateway: httpx.AsyncClient) -> None:
        r = await gateway.get("/v1/nothing/")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
