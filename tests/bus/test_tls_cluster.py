"""The rendered 3-node cluster: TLS on client connections, mutual TLS on routes, nkeys."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError
from nats.js.errors import APIError

from contracts.bus import ADMIN, inbox_prefix
from contracts.subjects import DEAD_LETTER_STREAM, EVENT_STREAM
from deploy import bus
from deploy.natsconf import authorization
from deploy.natskeys import CA_FILE, Keyring, ensure_tls
from mesh.localnats import free_port, nats_server_binary, wait_port
from mesh.nats import BusAuth, connect


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], Path]]:
    """Three nodes from ``deploy.bus.cluster_confs`` (free ports), their TLS directory."""
    out = tmp_path_factory.mktemp("cluster")
    clients = [free_port() for _ in range(3)]
    routes = [free_port() for _ in range(3)]
    confs = bus.cluster_confs(str(out), clients, routes, (None, None, None), str(out / "js"))
    keyring = Keyring(out / "creds").ensure()
    (out / "auth.conf").write_text(authorization(keyring))
    ensure_tls(out / "tls", bus.tls_hosts("cluster"))
    procs = []
    with contextlib.ExitStack() as stack:
        for name, text in confs.items():
            (out / name).write_text(text)
            log = stack.enter_context((out / f"{name}.log").open("wb"))
            procs.append(
                subprocess.Popen(
                    [nats_server_binary(), "-c", str(out / name)], stdout=log, stderr=log
                )
            )
        try:
            for port in clients:
                wait_port(port)
            yield [f"nats://127.0.0.1:{p}" for p in clients], out
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)


def auth(out: Path, process: str) -> BusAuth:
    return BusAuth(
        str(out / "creds" / f"{process}.nk"), inbox_prefix(process), str(out / "tls" / CA_FILE)
    )


class TestTlsCluster:
    async def test_admin_creates_replicated_streams_over_tls(
        self, tls_cluster: tuple[list[str], Path]
    ) -> None:
        urls, out = tls_cluster
        # R3 streams need all three nodes routed to each other: over mutual TLS only.
        async with asyncio.timeout(60):
            while True:
                try:
                    made = await bus.create_streams(urls[0], auth(out, ADMIN), replicas=3)
                    break
                except (APIError, NatsError, TimeoutError):
                    await asyncio.sleep(0.5)
        assert made == [EVENT_STREAM, DEAD_LETTER_STREAM]
        nc = await connect(urls[2], "identity-0", auth(out, "identity"))
        try:
            info = await nc.jetstream().stream_info(EVENT_STREAM)
            assert info.config.num_replicas == 3
            assert info.cluster is not None
            assert len(info.cluster.replicas or []) == 2  # the two other nodes
            ack = await nc.jetstream().publish("pm.v1.evt.acme.identity.audit", b"{}")
            assert ack.stream == EVENT_STREAM
        finally:
            await nc.close()

    async def test_plain_connection_is_refused(self, tls_cluster: tuple[list[str], Path]) -> None:
        """A client speaking plain text gets nothing but the demand for TLS."""
        urls, _ = tls_cluster
        host, port = urls[1].removeprefix("nats://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            info = json.loads((await reader.readline()).removeprefix(b"INFO "))
            assert info["tls_required"] is True
            writer.write(b'CONNECT {"verbose":false}\r\nSUB pm.v1.> 1\r\nPING\r\n')
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), 10)
            assert b"PONG" not in answer
            assert await asyncio.wait_for(reader.read(4096), 10) == b""  # closed
        finally:
            writer.close()

    async def test_a_client_that_does_not_trust_the_ca_is_refused(
        self, tls_cluster: tuple[list[str], Path]
    ) -> None:
        urls, out = tls_cluster
        seed = str(out / "creds" / "identity.nk")
        with pytest.raises(ssl.SSLCertVerificationError):
            await nats.connect(
                urls[1], nkeys_seed=seed, allow_reconnect=False, max_reconnect_attempts=0,
                connect_timeout=2,
            )  # fmt: skip

    async def test_tls_without_a_key_is_refused(self, tls_cluster: tuple[list[str], Path]) -> None:
        urls, out = tls_cluster
        ctx = ssl.create_default_context(cafile=str(out / "tls" / CA_FILE))
        with pytest.raises(NatsError, match=r"(?i)authorization violation"):
            await nats.connect(urls[1], tls=ctx, allow_reconnect=False, max_reconnect_attempts=0)
