"""Run the gateway: ``python -m gateway`` (settings from ``PM_GATEWAY_*``)."""

from __future__ import annotations

from typing import Any

import uvicorn

from gateway.settings import GatewaySettings
from mesh.defaults import process_logging


def app_factory() -> Any:
    """Builds the app in each uvicorn worker (settings read from the environment)."""
    from gateway.app import create_app

    settings = GatewaySettings()
    process_logging("gateway", settings)
    return create_app(settings)


def main() -> None:
    settings = GatewaySettings()
    process_logging("gateway", settings)
    uvicorn.run(
        "gateway.__main__:app_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        # Open notification streams never finish on their own: past this grace (no other
        # request lives longer than its deadline anyway) a stopping worker cuts them, and
        # their clients reconnect to another replica.
        timeout_graceful_shutdown=max(1, int(settings.request_deadline_s)),
    )


if __name__ == "__main__":
    main()
