"""The operations app every process serves (mesh.observe, mesh.defaults): prometheus
exposition on /metrics, /healthz, /readyz that follows a real dependency."""

from __future__ import annotations

import httpx
import nats
from fastapi import FastAPI
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from mesh.defaults import process_defaults
from mesh.observe import ObserveServer
from mesh.settings import MeshSettings
from tests.support import infra

PROBE_TOTAL = Counter("pm_test_operations_probe", "Counted by the operations app's tests")


async def _always() -> bool:
    return True


async def test_metrics_are_prometheus_exposition_in_both_formats() -> None:
    PROBE_TOTAL.inc(3)
    server = ObserveServer("127.0.0.1", 0, _always)
    port = await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            text = await http.get("/metrics")
            openmetrics = await http.get(
                "/metrics", headers={"Accept": "application/openmetrics-text"}
            )
            gzipped = await http.get("/metrics", headers={"Accept-Encoding": "gzip"})
    finally:
        await server.stop()
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text.text)}
    (sample,) = [
        s for s in families["pm_test_operations_probe"].samples if s.name.endswith("_total")
    ]
    assert sample.value >= 3
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    assert gzipped.headers["content-encoding"] == "gzip" and "pm_test_operations" in gzipped.text


async def test_readiness_follows_a_real_dependency(nats_url: str) -> None:
    """Ready while the NATS connection is up; 503 problem+json saying why once it is not."""
    nc = await nats.connect(nats_url)

    async def ready() -> bool:
        return nc.is_connected

    def reasons() -> list[str]:
        return [] if nc.is_connected else ["nats: not connected"]

    server = ObserveServer("127.0.0.1", 0, ready, reasons)
    port = await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            up = await http.get("/readyz")
            assert (up.status_code, up.json()) == (200, {"status": "ready"})
            await nc.close()
            down = await http.get("/readyz")
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
            problem = down.json()
            assert problem["status"] == 503 and problem["reasons"] == ["nats: not connected"]
            assert problem["detail"] == "nats: not connected"
            assert (await http.get("/healthz")).json() == {"status": "ok"}, "alive all along"
            unknown = await http.get("/admin")
            assert unknown.status_code == 404
            assert unknown.headers["content-type"] == "application/problem+json"
    finally:
        await server.stop()
    async with httpx.AsyncClient() as http:
        try:
            await http.get(f"http://127.0.0.1:{port}/healthz")
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the operations port is still served after stop")


async def test_workers_share_the_operations_port() -> None:
    first = ObserveServer("127.0.0.1", 0, _always, reuse_port=True)
    port = await first.start()
    second = ObserveServer("127.0.0.1", port, _always, reuse_port=True)
    try:
        assert await second.start() == port
    finally:
        await second.stop()
        await first.stop()


async def test_public_probes_answer_with_the_same_app() -> None:
    """A process whose probes use its public port routes them to its operations app; the
    operations port serves /metrics, the public one does not unless asked."""
    ready = {"now": False}

    async def readiness() -> bool:
        return ready["now"]

    defaults = process_defaults(
        "probe-test",
        MeshSettings(),
        readiness,
        lambda: ["starting"],
        setup_logging=False,
    )
    app = FastAPI()
    defaults.probes(app)
    ops = await defaults.start()
    try:
        async with (
            infra.serve_app(app) as base,
            httpx.AsyncClient() as http,
        ):
            for url in (base, f"http://127.0.0.1:{ops}"):
                starting = await http.get(f"{url}/readyz")
                assert starting.status_code == 503 and starting.json()["reasons"] == ["starting"]
            ready["now"] = True
            for url in (base, f"http://127.0.0.1:{ops}"):
                assert (await http.get(f"{url}/readyz")).json() == {"status": "ready"}
            assert (await http.get(f"{base}/metrics")).status_code == 404
            assert (await http.get(f"http://127.0.0.1:{ops}/metrics")).status_code == 200
    finally:
        await defaults.stop()
    assert defaults.tracer() is None, "no spans unless otel is on"
