"""The whole mesh for the fuzzer, served from a thread of its own.

Schemathesis calls the API with blocking HTTP from the test's thread, so the mesh
(identity, gateway, the four services on a NATS of its own, every database a SQLite
file, the portal) runs its event loop in another thread. It is the portal tests' mesh
(``tests.portal.mesh.start_mesh``), seeded with the same content, so the fuzzer reads
lists that hold real rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.portal import content
from tests.portal.mesh import Mesh, start_mesh
from tests.support import infra

DATABASES = ("identity", "profile", "collaboration", "matching", "connector", "portal")


@contextlib.asynccontextmanager
async def seeded_mesh(workdir: Path, hashes: dict[str, str]) -> AsyncIterator[Mesh]:
    with infra.local_nats() as nats_url:
        urls = {name: f"sqlite+aiosqlite:///{workdir / f'{name}.db'}" for name in DATABASES}
        async with start_mesh(nats_url, urls, workdir, hashes) as mesh:
            mesh.seeded = await content.seed(mesh)
            yield mesh


class MeshThread:
    """Runs :func:`seeded_mesh` in a thread's event loop until :meth:`stop`."""

    def __init__(self, workdir: Path, hashes: dict[str, str]) -> None:
        self.workdir = workdir
        self.hashes = hashes
        self._ready: concurrent.futures.Future[Mesh] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-mesh", daemon=True)

    def start(self, timeout: float = 180) -> Mesh:
        self._thread.start()
        return self._ready.result(timeout)

    def stop(self, timeout: float = 60) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the mesh did not stop"

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with seeded_mesh(self.workdir, self.hashes) as mesh:
            self._ready.set_result(mesh)
            await self._stop.wait()


@pytest.fixture(scope="package")
def fuzz_mesh(
    tmp_path_factory: pytest.TempPathFactory, demo_hashes: dict[str, str]
) -> Iterator[Mesh]:
    """The seeded mesh on free loopback ports, its event loop in a thread of its own; one for
    every test of this package."""
    runner = MeshThread(tmp_path_factory.mktemp("fuzz-mesh"), demo_hashes)
    mesh = runner.start()
    try:
        yield mesh
    finally:
        runner.stop()
