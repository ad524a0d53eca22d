"""Real outages for tests: a nats-server that stops and starts again on the same port and
store (a database's outage: :class:`tests.support.tcpproxy.TcpProxy`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mesh.localnats import free_port, nats_command, wait_port


class NatsNode:
    """One nats-server with JetStream on a fixed port and store directory: stopping and
    starting it again keeps its streams (on disk), as a restarted server does."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            nats_command(self.port, self.store),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
