"""Back up a running deployment, start a fresh one from the backup, and find the same
data there: a person, a thread with its posts, a tag cloud, a grant; new events flow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from deploy.backup import backup, restore
from deploy.welcome import people_tokens, seed_content
from mesh.localnats import child_process, free_port, wait_port
from tests.faults.load import BASE, record
from tests.support.topology import Topology, TopologyConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
CONFIG = TopologyConfig(replicas=1)
OPERATION = "fabrikam.mesh-health"


def sub(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


class Mesh:
    """The demo people's view of one deployment, through its first gateway."""

    def __init__(self, topology: Topology, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.api = httpx.AsyncClient(base_url=topology.gateway_urls[0], timeout=30)

    async def get(self, who: str, path: str) -> Any:
        resp = await self.api.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text}"
        return resp.json()

    async def snapshot(self) -> dict[str, Any]:
        """A person, the first logistics thread with its posts, a tag cloud, the grants
        of an operation: what must survive a backup and restore unchanged."""
        nadia = sub(self.tokens["nadia"])
        threads = await self.get("bruno", f"{BASE}/forums/categories/logistics/threads")
        thread = min(threads["items"], key=lambda t: t["title"])
        return {
            "person": await self.get("bruno", f"{BASE}/people/{nadia}"),
            "thread": await self.get("bruno", f"{BASE}/forums/threads/{thread['id']}"),
            "cloud": (await self.get("bruno", f"{BASE}/people/{nadia}/card"))["cloud"],
            "grants": await self.get("fatima", f"{BASE}/operations/{OPERATION}/grants"),
        }

    async def settled_snapshot(self, timeout: float = 60.0) -> dict[str, Any]:
        """A snapshot once two taken a second apart agree and the cloud has terms
        (every seeded event consumed)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            now = await self.snapshot()
            if now == last and now["cloud"]["terms"]:
                return now
            assert time.monotonic() < deadline, "the seeded mesh did not settle"
            last = now
            await asyncio.sleep(1.0)


async def signed_in(topology: Topology) -> Mesh:
    async with httpx.AsyncClient(timeout=30) as http:
        return Mesh(topology, await people_tokens(http, topology.issuer))


async def _demo_backends(topology: Topology, stack: contextlib.ExitStack) -> dict[str, str]:
    """The seeded partners' demo back-ends (as ``partnermesh up`` starts them), so the
    connector's demo operations, grants and flows exist to be backed up."""
    ports = {partner: free_port() for partner in ("contoso", "northwind", "fabrikam")}
    topology.var.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "deploy.demo.backends", "--var", str(topology.var)]
    argv += ["--gateway", topology.gateway_urls[0], "--issuer", topology.issuer]
    for partner, port in ports.items():
        argv += ["--port", f"{partner}={port}"]
    stack.enter_context(child_process(argv))
    for port in ports.values():
        await asyncio.to_thread(wait_port, port, 30.0)
    return {partner: f"http://127.0.0.1:{port}" for partner, port in ports.items()}


class TestBackupRestore:
    async def test_a_fresh_deployment_from_the_backup_serves_the_same_data(
        self, tmp_path: Path, pg_admin: str
    ) -> None:
        if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
            pytest.skip("backups need pg_dump and pg_restore (apt-get install postgresql-client)")
        dumps = tmp_path / "backup"
        credentials = tmp_path / "demo-identity.json"
        first = Topology(tmp_path / "first", pg_admin, CONFIG)
        stack = contextlib.ExitStack()  # the demo back-ends, stopped with the first mesh
        try:
            await first.start()
            mesh = await signed_in(first)
            backends = await _demo_backends(first, stack)
            connector = {
                "backends": backends,
                "var": first.var,
                "clients": json.loads(first.credentials_path.read_text())["clients"],
            }
            seeded = await seed_content(first.gateway_urls[0], mesh.tokens, connector)
            before = await mesh.settled_snapshot()
            t0 = time.monotonic()
            manifest = await backup(
                dumps,
                first.nats_url,
                {owner: first.database_url(owner, proxied=False) for owner in first.database_names},
                **first.nats_options,
            )
            backup_s = time.monotonic() - t0
            shutil.copyfile(first.credentials_path, credentials)
            await mesh.api.aclose()
        finally:
            stack.close()
            await first.stop()

        async def load(topology: Topology) -> None:
            shutil.copyfile(credentials, topology.credentials_path)
            databases = {
                o: topology.database_url(o, proxied=False) for o in topology.database_names
            }
            await restore(dumps, topology.nats_url, databases, **topology.nats_options)

        second = Topology(tmp_path / "second", pg_admin, CONFIG)
        try:
            t0 = time.monotonic()
            await second.start(restore=load)
            restore_s = time.monotonic() - t0
            mesh = await signed_in(second)
            after = await mesh.snapshot()
            # New events flow: a new post reaches its author's tag cloud.
            thread = after["thread"]["id"]
            resp = await mesh.api.post(
                f"{BASE}/forums/threads/{thread}/posts",
                json={"body": "Restored and moving: reefer slots open again next week."},
                headers={"Authorization": f"Bearer {mesh.tokens['nadia']}"},
            )
            assert resp.status_code == 201, resp.text
            deadline = time.monotonic() + 60
            while (cloud := (await mesh.snapshot())["cloud"])["posts"] == after["cloud"]["posts"]:
                assert time.monotonic() < deadline, "a post after the restore never reached profile"
                await asyncio.sleep(0.5)
            await mesh.api.aclose()
        finally:
            await second.stop()
        record(
            "backup_restore",
            {
                "seeded": seeded,
                "backup": manifest,
                "backup_s": round(backup_s, 1),
                "restore_and_start_s": round(restore_s, 1),
                "dump_bytes": {p.name: p.stat().st_size for p in sorted(dumps.iterdir())},
                "restarted_at_start": first.restarted_at_start + second.restarted_at_start,
            },
        )
        assert after == before
        assert cloud["posts"] == before["cloud"]["posts"] + 1
