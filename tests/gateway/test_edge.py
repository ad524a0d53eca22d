"""Edge hygiene: security headers, request ids, CORS per ecosystem, size limits, probes, logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from mesh.localnats import (
    child_process,
    free_port,
    local_nats,
    nats_command,
    provision_streams,
    wait_port,
)
from mesh.logging import JsonFormatter
from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer, gateway_settings
from tests.support.infra import serve_app
from tests.support.tokens import TestKeys, TokenFactory

ECHO = "/v1/ecosystems/acme/echo"
MASHUP = "/v1/ecosystems/acme/mashup"
PORTAL = "https://portal.acme.example"


class TestSecurityHeaders:
    @pytest.mark.parametrize("path", [ECHO, "/healthz", "/openapi.json", "/v1/unknown"])
    async def test_every_response_carries_them(self, gateway: httpx.AsyncClient, path: str) -> None:
        r = await gateway.get(path)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "strict-transport-security" in r.headers

    async def test_request_id_is_kept_when_sane_and_replaced_otherwise(
        self, gateway: httpx.AsyncClient
    ) -> None:
        kept = await gateway.get("/healthz", headers={"X-Request-Id": "abc-123"})
        assert kept.headers["x-request-id"] == "abc-123"
        replaced = await gateway.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
        assert replaced.headers["x-request-id"] != "bad id\twith spaces"
        assert len(replaced.headers["x-request-id"]) == 16

    async def test_problems_name_the_request_id(self, gateway: httpx.AsyncClient) -> None:
        r = await gateway.get(ECHO, headers={"X-Request-Id": "trace-me"})
        assert r.json()["request_id"] == "trace-me"


@pytest.fixture
async def cors_gateway(
    start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway where ecosystem acme admits the portal's origin and globex admits none."""
    async with start_gateway(cors_origins={"acme": [PORTAL], "globex": []}) as client:
        yield client


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }


class TestCors:
    async def test_preflight_from_an_allowed_origin(self, cors_gateway: httpx.AsyncClient) -> None:
        r = await cors_gateway.options(ECHO, headers=preflight(PORTAL))
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == PORTAL
        assert "Authorization" in r.headers["access-control-allow-headers"]
        assert "DPoP" in r.headers["access-control-allow-headers"].split(", ")
        assert "GET" in r.headers["access-control-allow-methods"]

    @pytest.mark.parametrize(
        ("path", "origin"),
        [(ECHO, "https://evil.example"), ("/v1/ecosystems/globex/echo", PORTAL)],
        ids=["foreign-origin", "origin-of-another-ecosystem"],
    )
    async def test_preflight_refused(
        self, cors_gateway: httpx.AsyncClient, path: str, origin: str
    ) -> None:
        r = await cors_gateway.options(path, headers=preflight(origin))
        assert r.status_code >= 400
        assert "access-control-allow-origin" not in r.headers

    async def test_actual_request_exposes_headers_to_allowed_origin_only(
        self, cors_gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        ok = await cors_gateway.get(ECHO, headers={"Origin": PORTAL, **bearer(tokens.mint())})
        assert ok.headers["access-control-allow-origin"] == PORTAL
        assert "RateLimit" in ok.headers["access-control-expose-headers"]
        assert "DPoP-Nonce" in ok.headers["access-control-expose-headers"]
        foreign = await cors_gateway.get(ECHO, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in foreign.headers


class TestBodyLimit:
    async def test_declared_length_over_the_limit_is_413(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        tokens: TokenFactory,
    ) -> None:
        async with start_gateway(max_body_bytes=100) as gw:
            r = await gw.post(
                MASHUP, content=b"{" + b" " * 200 + b"}", headers=bearer(tokens.mint())
            )
        assert r.status_code == 413
        assert r.json()["code"] == "payload_too_large"

    async def test_chunked_body_over_the_limit_is_413(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        tokens: TokenFactory,
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 50

        async with start_gateway(max_body_bytes=100) as gw:
            r = await gw.post(
                MASHUP,
                content=chunks(),
                headers={**bearer(tokens.mint()), "Content-Type": "application/json"},
            )
        assert r.status_code == 413


class TestProbes:
    async def test_healthz_and_readyz(self, gateway: httpx.AsyncClient) -> None:
        assert (await gateway.get("/healthz")).json() == {"status": "ok"}
        assert (await gateway.get("/readyz")).status_code == 200

    async def test_readyz_fails_while_nats_is_gone(self, test_keys: TestKeys) -> None:
        with local_nats() as url:
            app = create_app(gateway_settings(url), verifier=test_keys.verifier())
            server = serve_app(app)
            base = await server.__aenter__()
            client = httpx.AsyncClient(base_url=base)
            assert (await client.get("/readyz")).status_code == 200
        # the nats-server is stopped now
        status = 200
        for _ in range(100):
            status = (await client.get("/readyz")).status_code
            if status == 503:
                break
            await asyncio.sleep(0.05)
        await client.aclose()
        assert status == 503
        await server.__aexit__(None, None, None)

    async def test_waits_for_nats_answering_503_then_becomes_ready(
        self, test_keys: TestKeys, tokens: TokenFactory, tmp_path: Path
    ) -> None:
        """NATS not there at start: the gateway keeps trying instead of exiting, answers 503
        (probe and operations alike), and is ready by itself once NATS and the stream are."""
        port = free_port()
        url = f"nats://127.0.0.1:{port}"
        app = create_app(gateway_settings(url, startup_grace_s=0.1), verifier=test_keys.verifier())
        with contextlib.ExitStack() as later:  # NATS stops after the gateway
            async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
                assert (await client.get("/readyz")).status_code == 503
                refused = await client.get(ECHO, headers=bearer(tokens.mint()))
                assert refused.status_code == 503 and refused.json()["code"] == "unavailable"
                later.enter_context(child_process(nats_command(port, tmp_path / "nats")))
                wait_port(port)
                provision_streams(url)
                status = 503
                for _ in range(300):
                    status = (await client.get("/readyz")).status_code
                    if status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200


class TestAccessLog:
    async def test_one_json_line_per_request_with_ids(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        lines: list[str] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                lines.append(self.format(record))

        handler = Collect()
        handler.setFormatter(JsonFormatter("gateway"))
        logger = logging.getLogger("gateway.access")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        try:
            await gateway.get(
                ECHO,
                headers={
                    **bearer(tokens.mint(partner="contoso")),
                    "X-Request-Id": "log-1",
                    "traceparent": f"00-{trace}-00f067aa0ba902b7-01",
                },
            )
        finally:
            logger.removeHandler(handler)
        doc = json.loads(lines[-1])
        assert doc["request_id"] == "log-1" and doc["trace_id"] == trace
        assert (doc["route"], doc["status"], doc["partner"]) == ("system.echo", 200, "contoso")
        assert doc["method"] == "GET" and doc["ms"] >= 0


@pytest.mark.slow  # real processes
class TestProcess:
    async def test_python_m_gateway_serves_and_stops_cleanly(self, nats_url: str) -> None:
        port, ops = free_port(), free_port()
        env = {
            **os.environ,
            "PM_GATEWAY_PORT": str(port),
            "PM_GATEWAY_OBSERVE_PORT": str(ops),
            "PM_GATEWAY_WORKERS": "2",  # both workers share the operations port
            "PM_GATEWAY_NATS_URL": nats_url,
            "PM_GATEWAY_IDENTITY_URL": "http://127.0.0.1:9",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            status = None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                # As long as two worker processes take to start on a loaded machine.
                deadline = asyncio.get_running_loop().time() + 60
                while asyncio.get_running_loop().time() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        status = (await client.get("/readyz")).status_code
                        if status == 200:
                            break
                    await asyncio.sleep(0.05)
                assert status == 200
                assert (await client.get(ECHO)).status_code == 401
                assert (await client.get("/metrics")).status_code == 404
                for _ in range(4):  # whichever worker answers has the operations port
                    metrics = await client.get(f"http://127.0.0.1:{ops}/metrics")
                    assert metrics.status_code == 200 and "pm_http_requests_total" in metrics.text
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 15)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert proc.returncode in (0, -signal.SIGTERM)
        lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
        assert any(doc["msg"].startswith("Finished server process") for doc in lines)
        access = [doc for doc in lines if doc.get("logger") == "gateway.access"]
        assert any(doc["status"] == 401 and doc["route"] == "system.echo" for doc in access)


@pytest.fixture
async def operated(
    start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A gateway with its operations port on a known free port: ``(client, ops URL)``."""
    port = free_port()
    async with start_gateway(observe_port=port) as client:
        yield client, f"http://127.0.0.1:{port}"


class TestOperationsPort:
    async def test_metrics_count_requests_by_route_status_and_partner(
        self, operated: tuple[httpx.AsyncClient, str], profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        gateway, ops = operated
        await gateway.get(ECHO, headers=bearer(tokens.mint(partner="fabrikam")))
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{ops}/metrics")).text
        counted = [line for line in text.splitlines() if line.startswith("pm_http_requests_total")]
        wanted = ('partner="fabrikam"', 'route="system.echo"', 'status="200"')
        assert any(all(w in line for w in wanted) for line in counted)
        assert "pm_gateway_upstream_seconds_bucket" in text

    async def test_the_public_port_serves_no_metrics(
        self, operated: tuple[httpx.AsyncClient, str], tokens: TokenFactory
    ) -> None:
        gateway, _ = operated
        for headers in ({}, bearer(tokens.mint(roles=["operator"], partner=None))):
            r = await gateway.get("/metrics", headers=headers)
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
            assert "pm_http_requests_total" not in r.text

    async def test_probes_answer_on_both_ports(
        self, operated: tuple[httpx.AsyncClient, str]
    ) -> None:
        gateway, ops = operated
        async with httpx.AsyncClient() as http:
            for path in ("/healthz", "/readyz"):
                assert (await gateway.get(path)).status_code == 200, path
                assert (await http.get(f"{ops}{path}")).status_code == 200, path
