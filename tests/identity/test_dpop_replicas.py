"""Two replicas of one provider (one database, one public URL): with a shared Redis a
DPoP proof used at one is refused at the other; without one, each remembers its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.http.app import create_app
from tests.support import infra
from tests.support.dpop import DPoPKey
from tests.support.identity import serve_idp, start_idp

CLIENT = "fabrikam-backend"


@asynccontextmanager
async def _replicas(
    nats_url: str, database: str, workdir: Any, hashes: dict[str, str], **shared: Any
) -> AsyncIterator[tuple[str, list[str], dict[str, Any]]]:
    """(issuer, [replica URL, replica URL], demo credentials): the second replica is the
    same settings on another port, as behind a load balancer."""
    settings, creds, app = await start_idp(nats_url, database, workdir, hashes, **shared)
    other = settings.model_copy(update={"port": infra.free_port(), "instance": "1"})
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(serve_idp(app, settings.port))
        second = await stack.enter_async_context(serve_idp(create_app(other), other.port))
        yield f"{settings.public_url}/eco/acme", [first, second], creds
    await asyncio.sleep(0)


async def _token(
    http: httpx.AsyncClient, replica: str, creds: dict[str, Any], proof: str
) -> httpx.Response:
    secret = creds["clients"][CLIENT]["client_secret"]
    return await http.post(
        f"{replica}/eco/acme/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT, secret),
        headers={"DPoP": proof},
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


class TestReplayAcrossReplicas:
    async def test_a_proof_used_at_one_replica_is_refused_at_the_other(
        self,
        nats_url: str,
        idp_database: str,
        tmp_path: Path,
        demo_hashes: dict[str, str],
        redis_url: str,
        http: httpx.AsyncClient,
    ) -> None:
        shared = {"redis_url": redis_url, "redis_key_prefix": f"pm:test:{uuid.uuid4().hex}:"}
        async with _replicas(nats_url, idp_database, tmp_path, demo_hashes, **shared) as (
            issuer,
            (one, two),
            creds,
        ):
            key = DPoPKey()
            proof = key.proof("POST", f"{issuer}/token")
            first = await _token(http, one, creds, proof)
            assert first.status_code == 200, first.text
            assert first.json()["token_type"] == "DPoP"
            again = await _token(http, two, creds, proof)
            assert again.status_code == 400, again.text
            assert again.json()["error"] == "invalid_dpop_proof"
            assert "access_token" not in again.json()
            assert (await _token(http, one, creds, proof)).status_code == 400  # and at home
            fresh = await _token(http, two, creds, key.proof("POST", f"{issuer}/token"))
            assert fresh.status_code == 200, fresh.text

    async def test_without_redis_each_replica_remembers_its_own(
        self,
        nats_url: str,
        idp_database: str,
        tmp_path: Path,
        demo_hashes: dict[str, str],
        http: httpx.AsyncClient,
    ) -> None:
        async with _replicas(nats_url, idp_database, tmp_path, demo_hashes) as (
            issuer,
            (one, two),
            creds,
        ):
            proof = DPoPKey().proof("POST", f"{issuer}/token")
            assert (await _token(http, one, creds, proof)).status_code == 200
            assert (await _token(http, one, creds, proof)).status_code == 400
            # the documented limit of a per-process cache: set PM_IDENTITY_REDIS_URL
            assert (await _token(http, two, creds, proof)).status_code == 200
