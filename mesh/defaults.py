"""What every process sets up the same way, in one call: :func:`process_defaults`.

Identity, the gateway, the portal and each NATS service ask for their defaults with
their name, settings and readiness, and get: logging (JSON lines named
``<process>-<instance>``, :mod:`mesh.logging`), a tracer provider when ``otel`` is on
(:mod:`mesh.tracing`), and the operations app (:mod:`mesh.observe`: prometheus-client's
``/metrics``, ``/healthz``, ``/readyz`` as problem+json when not ready) on the
process's operations port (``PM_<PROCESS>_OBSERVE_HOST``/``_PORT``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from mesh import logging as mesh_logging
from mesh.observe import ObserveServer, Ready, Reasons
from mesh.settings import MeshSettings
from mesh.tracing import sdk_provider

log = logging.getLogger(__name__)


@dataclass
class ProcessDefaults:
    """A process's operations server and tracer provider (``None``: no tracing)."""

    name: str
    operations: ObserveServer
    tracer_provider: Any = None

    def tracer(self) -> Any:
        """The process's tracer, or ``None`` when it records no spans."""
        if self.tracer_provider is None:
            return None
        return self.tracer_provider.get_tracer(f"partnermesh.{self.name}")

    def probes(self, app: Starlette, *paths: str) -> None:
        """Answer ``paths`` (default ``/healthz`` and ``/readyz``) on ``app`` too, with the
        operations app: for manifests whose probes use the public port."""
        for path in paths or ("/healthz", "/readyz"):
            app.router.routes.append(Route(path, self.operations.app, include_in_schema=False))

    async def start(self) -> int:
        """Serve the operations port; its number (logged)."""
        port = await self.operations.start()
        log.info(f"{self.name} operations port", extra={"observe_port": port})
        return port

    async def stop(self) -> None:
        await self.operations.stop()


def process_logging(name: str, settings: MeshSettings) -> None:
    """Log lines of process ``name`` (``<name>-<instance>``) as its settings ask."""
    mesh_logging.setup(f"{name}-{settings.instance}", settings.log_level, settings.log_json)


def process_defaults(
    name: str,
    settings: MeshSettings,
    ready: Ready,
    reasons: Reasons | None = None,
    *,
    setup_logging: bool = True,
    tracer_provider: Any = None,
    reuse_port: bool = False,
) -> ProcessDefaults:
    """The defaults of process ``name``. ``tracer_provider`` replaces the one
    ``settings.otel`` would make (tests); ``reuse_port`` lets worker processes share the
    operations port."""
    if setup_logging:
        process_logging(name, settings)
    if tracer_provider is None and settings.otel:
        tracer_provider = sdk_provider(f"partnermesh-{name}", settings.instance)
    server = ObserveServer(
        settings.observe_host, settings.observe_port, ready, reasons, reuse_port=reuse_port
    )
    return ProcessDefaults(name, server, tracer_provider)
