"""A real nats-server started with the generated configuration, and probes on it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from contracts.bus import ADMIN, inbox_prefix
from deploy import bus
from deploy.natsconf import authorization
from deploy.natskeys import Keyring
from mesh.localnats import free_port, nats_server_binary, wait_port
from mesh.nats import BusAuth

# Nobody may publish into an inbox (replies come from allow_responses): always refused.
MARKER = "_INBOX.nobody.marker"
VIOLATION = re.compile(
    r'permissions violation for (publish|subscription) to "([^"]+)"(?: using queue "([^"]+)")?',
    re.IGNORECASE,
)


@dataclass
class SecuredBus:
    """nats-server running the rendered single-node config with a fresh keyring."""

    url: str
    keyring: Keyring
    directory: Path
    proc: subprocess.Popen[bytes]

    def auth(self, process: str, seed: Path | None = None) -> BusAuth:
        return BusAuth(str(seed or self.keyring.seed_file(process)), inbox_prefix(process))

    def rerender(self) -> None:
        """Write the authorization again from the keyring, and reload the server (SIGHUP)."""
        (self.directory / "auth.conf").write_text(authorization(self.keyring))
        self.proc.send_signal(signal.SIGHUP)

    def restart(self) -> None:
        """Stop the server and start it again on the same port and config (clients
        reconnect)."""
        self.proc.terminate()
        self.proc.wait(10)
        log = (self.directory / "nats.log").open("ab")
        conf = str(self.directory / "nats.conf")
        self.proc = subprocess.Popen([nats_server_binary(), "-c", conf], stdout=log, stderr=log)
        log.close()
        wait_port(int(self.url.rsplit(":", 1)[1]))

    def log(self) -> str:
        return (self.directory / "nats.log").read_text(errors="replace")


@contextlib.contextmanager
def secured_server(directory: Path) -> Iterator[SecuredBus]:
    """A server with the generated config (``deploy.bus.single_conf``) on a free port."""
    port = free_port()
    keyring = Keyring(directory / "creds").ensure()
    conf = directory / "nats.conf"
    conf.write_text(bus.single_conf(port, None, str(directory / "js")))
    (directory / "auth.conf").write_text(authorization(keyring))
    with (directory / "nats.log").open("wb") as log:
        proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=log, stderr=log)
    server = SecuredBus(f"nats://127.0.0.1:{port}", keyring, directory, proc)
    try:
        wait_port(port)
        yield server
    finally:
        server.proc.terminate()
        server.proc.wait(10)


@dataclass
class Probe:
    """A raw connection as one process that records every permission violation."""

    nc: Client
    errors: list[str] = field(default_factory=list)

    def refused(self) -> set[tuple[str, str, str | None]]:
        """``("publish"|"subscription", subject, queue)`` the server refused so far
        (lower case: the client reports the server's error in lower case)."""
        found = set()
        for text in self.errors:
            match = VIOLATION.search(text)
            if match:
                kind, subject, queue = match.groups()
                found.add((kind.lower(), subject.lower(), queue.lower() if queue else None))
        return found

    async def settle(self) -> set[tuple[str, str, str | None]]:
        """Every refusal of the commands sent so far: the server answers in order, so once
        the refusal of a marker sent last has arrived, all earlier ones have too."""
        marker = f"{MARKER}.{len(self.errors)}.{id(self)}"
        await self.nc.publish(marker, b"")
        await self.nc.flush()
        async with asyncio.timeout(10):
            while ("publish", marker.lower(), None) not in self.refused():
                await asyncio.sleep(0.01)
        return {r for r in self.refused() if not r[1].startswith(MARKER.lower())}


async def probe(url: str, auth: BusAuth, name: str) -> Probe:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        url, name=name, error_cb=on_error, allow_reconnect=False, **auth.options()
    )
    return Probe(nc, errors)


@pytest.fixture(scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecuredBus]:
    """A secured bus for the module, with the streams created by the admin credential."""
    with secured_server(tmp_path_factory.mktemp("bus")) as server:
        await bus.create_streams(server.url, server.auth(ADMIN))
        yield server


ConnectAs = Callable[[str], Awaitable[Probe]]
"""``connect_as``: a probe connection with a process's credential."""


@pytest.fixture
async def connect_as(secured: SecuredBus) -> AsyncIterator[ConnectAs]:
    """``await connect_as(process)``: a probe connection with that process's credential,
    closed after the test."""
    opened: list[Probe] = []

    async def open_(process: str) -> Probe:
        p = await probe(secured.url, secured.auth(process), f"{process}-test")
        opened.append(p)
        return p

    yield open_
    for p in opened:
        with contextlib.suppress(Exception):
            await p.nc.close()
