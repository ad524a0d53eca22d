"""Every service process exposes /metrics, /healthz and /readyz."""

from __future__ import annotations

from pathlib import Path

import httpx
from nats.aio.client import Client

from contracts.v1 import system
from mesh.client import call
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory


class TestObserve:
    async def test_metrics_health_and_readiness(
        self, nats_url: str, nc: Client, tmp_path: Path, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        async with run_service(
            "profile",
            ProfileSettings,
            models.metadata,
            handlers.register,
            nats_url=nats_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            verifier=test_keys.verifier(),
        ) as rt:
            await call(nc, system.ECHO, {"eco": "acme"}, tokens.mint())
            base = f"http://127.0.0.1:{rt.observe.port}"
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{base}/healthz")).json() == {"status": "ok"}
                assert (await http.get(f"{base}/readyz")).status_code == 200
                metrics = (await http.get(f"{base}/metrics")).text
                assert (
                    'pm_service_requests_total{code="ok",operation="system.echo",service="profile"}'
                    in metrics
                )
                await rt.nc.close()
                assert (await http.get(f"{base}/readyz")).status_code == 503
