"""NATS connection with reconnects and the process's own credential, and the event stream."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from contracts.subjects import EVENT_STREAM
from mesh import metrics

log = logging.getLogger(__name__)

PERMISSIONS_VIOLATION = "permissions violation"


@dataclass(frozen=True)
class BusAuth:
    """A process's identity on the bus: its nkey seed file (``SU…``), the inbox prefix
    its replies arrive under (only it may subscribe there) and the CA that signed the
    servers' TLS certificates. Empty fields: a plain connection (development, tests)."""

    nkey_seed_file: str = ""
    inbox_prefix: str = ""
    tls_ca_file: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> BusAuth:
        """The credential a process's settings name; in production there must be one."""
        if getattr(settings, "environment", "") == "production" and not (
            settings.nats_nkey_seed_file
        ):
            prefix = settings.model_config.get("env_prefix", "PM_")
            raise ValueError(
                f"{prefix}NATS_NKEY_SEED_FILE is not set: in production every process "
                "connects to NATS with its own key (partnermesh nats render)"
            )
        return cls(
            settings.nats_nkey_seed_file, settings.nats_inbox_prefix, settings.nats_tls_ca_file
        )

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.connect`` for this identity."""
        opts: dict[str, Any] = {}
        if self.nkey_seed_file:
            # Read once: the process keeps this key (across reconnects) until it restarts,
            # even when a rotation replaces the file meanwhile (old and new are admitted
            # during the window; see deploy/natskeys.py).
            with open(self.nkey_seed_file) as seed:
                opts["nkeys_seed_str"] = seed.read().strip()
        if self.inbox_prefix:
            opts["inbox_prefix"] = self.inbox_prefix
        if self.tls_ca_file:
            opts["tls"] = ssl.create_default_context(cafile=self.tls_ca_file)
        return opts


def is_permission_violation(exc: BaseException) -> bool:
    return PERMISSIONS_VIOLATION in str(exc).lower()


async def connect(url: str, name: str, auth: BusAuth | None = None) -> Client:
    """A connection named ``name`` (``<process>-<instance>``) as ``auth`` says.

    Refused publishes and subscriptions (the server's "Permissions Violation") are
    logged and counted in ``pm_nats_permission_violations_total{conn=name}``."""
    violations = metrics.bus_permission_violations.labels(name)  # 0 from the start
    closing: list[Client] = []

    async def on_disconnect() -> None:
        if closing and (closing[0].is_draining or closing[0].is_closed):
            return  # our own drain/close, not an outage
        log.warning("nats disconnected", extra={"conn": name})

    async def on_reconnect() -> None:
        log.info("nats reconnected", extra={"conn": name})

    async def on_error(exc: Exception) -> None:
        if is_permission_violation(exc):
            # The server refused a publish or subscribe outside this process's grants:
            # a bug or a compromised process; alert on the counter.
            violations.inc()
            log.error("nats permissions violation", extra={"conn": name, "error": str(exc)})
            return
        log.warning("nats error: %s", exc, extra={"conn": name, "error": str(exc)})

    nc = await nats.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
        **(auth or BusAuth()).options(),
    )
    closing.append(nc)
    return nc


async def ensure_event_stream(js: JetStreamContext, replicas: int = 1, wait: float = 120.0) -> None:
    """Wait until the event stream exists.

    On a secured bus the admin credential creates it at deploy time and a running process
    may only look it up; on a bus without credentials (development, tests) the process
    creates it itself. A create refused (or unanswered) means the former: wait for it.
    """
    deadline = time.monotonic() + wait
    try:
        await js.stream_info(EVENT_STREAM)
        return
    except NotFoundError:
        pass
    try:
        from mesh.streams import stream_configs  # mesh.streams builds on this module

        await asyncio.wait_for(js.add_stream(stream_configs(replicas)[0]), 2.0)
        return
    except BadRequestError:
        pass  # already there with another config (e.g. more replicas): keep it
    except (NatsTimeoutError, TimeoutError):
        log.info("waiting for the event stream %s to be created", EVENT_STREAM)
    while True:
        try:
            await js.stream_info(EVENT_STREAM)
            return
        except NotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
