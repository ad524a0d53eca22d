"""The mesh's JetStream streams: managed once at deploy time, awaited by every process.

:func:`ensure_streams` creates or updates the event stream (``PM_EVENTS``) and the
dead-letter stream (``PM_DEAD_LETTERS``) with ``min(3, cluster size)`` replicas (or as
many as asked), and raises an existing stream's replicas in place; durable consumers
follow their stream's replica count. It runs in the deploy step (``partnermesh
streams``, and ``partnermesh up`` before it starts anything), with the credential
allowed to manage streams.

Running processes only :func:`wait_for_streams`: they retry with backoff until the
streams exist and JetStream answers, logging what they wait for, instead of exiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError

from contracts.subjects import (
    DEAD_LETTER_STREAM,
    DEAD_LETTER_STREAM_SUBJECTS,
    EVENT_STREAM,
    EVENT_STREAM_SUBJECTS,
)
from mesh.backoff import Backoff, retry
from mesh.nats import BusAuth

log = logging.getLogger(__name__)

MAX_REPLICAS = 3
EVENTS_MAX_AGE_S = 30 * 24 * 3600.0
DEAD_LETTERS_MAX_AGE_S = 90 * 24 * 3600.0
DUPLICATE_WINDOW_S = 600.0
STREAMS = (EVENT_STREAM, DEAD_LETTER_STREAM)


def stream_configs(replicas: int) -> list[StreamConfig]:
    """The configuration of every stream of the mesh at ``replicas`` replicas."""
    return [
        StreamConfig(
            name=EVENT_STREAM,
            subjects=EVENT_STREAM_SUBJECTS,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            max_age=EVENTS_MAX_AGE_S,
        ),
        # Dead letters carry a Nats-Msg-Id of their consumer and stream sequence: the same
        # failure reported twice (a redelivery, two replicas) is kept once.
        StreamConfig(
            name=DEAD_LETTER_STREAM,
            subjects=DEAD_LETTER_STREAM_SUBJECTS,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            max_age=DEAD_LETTERS_MAX_AGE_S,
        ),
    ]


def cluster_size(nc: Client) -> int:
    """How many NATS servers this connection knows of: the configured ones and those the
    cluster advertised (server INFO ``connect_urls``, which nats-py adds to its pool)."""
    return max(1, len({(u.hostname, u.port) for u in nc.servers}))


def default_replicas(nc: Client) -> int:
    return min(MAX_REPLICAS, cluster_size(nc))


async def ensure_streams(js: JetStreamContext, nc: Client, replicas: int | None = None) -> int:
    """Create or update every stream; returns the replica count used.

    ``replicas`` None: ``min(3, cluster size)``, never lowering a stream that already has
    more; should the cluster not place that many (fewer JetStream servers than it looked),
    one fewer at a time until the server accepts. An explicit count is used as given (an
    error when the cluster cannot place it). Retries while JetStream is not
    ready yet (a new cluster electing its meta leader)."""
    wanted = replicas if replicas is not None else default_replicas(nc)
    while True:
        try:
            for config in stream_configs(wanted):
                await retry(
                    f"ensuring stream {config.name}",
                    lambda config=config: _ensure(js, config, keep_more=replicas is None),  # type: ignore[misc]
                    Backoff(0.25, 5.0),
                    on_failure=_refuse_placement,
                )
            return wanted
        except CannotPlaceReplicas:
            if wanted <= 1 or replicas is not None:
                raise  # asked for a count the cluster cannot place: say so
            wanted -= 1
            log.warning("lowering stream replicas to %d", wanted)


class CannotPlaceReplicas(Exception):
    """The cluster cannot place a stream with that many replicas."""


def _refuse_placement(exc: Exception) -> None:
    text = str(exc).lower()
    if "insufficient resources" in text or "replicas > 1 not supported" in text:
        raise CannotPlaceReplicas(str(exc)) from exc


async def _ensure(js: JetStreamContext, config: StreamConfig, keep_more: bool) -> None:
    try:
        info = await js.stream_info(str(config.name))
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s (R%s)", config.name, config.num_replicas)
        return
    current = info.config
    replicas = config.num_replicas or 1
    if keep_more:
        replicas = max(replicas, current.num_replicas or 1)
    if current.num_replicas == replicas and set(current.subjects or []) == set(
        config.subjects or []
    ):
        return
    # Update in place: keep everything else an operator may have tuned.
    await js.update_stream(
        dataclasses.replace(current, num_replicas=replicas, subjects=config.subjects)
    )
    log.info("updated stream %s: R%s -> R%s", config.name, current.num_replicas, replicas)


async def wait_for_streams(
    js: JetStreamContext, names: tuple[str, ...] = STREAMS, backoff: Backoff | None = None
) -> None:
    """Return once every stream in ``names`` exists and JetStream answers for it; until
    then retry with backoff, logging what is missing (the deploy step creates them)."""
    backoff = backoff or Backoff(0.25, 10.0)
    for name in names:
        while True:
            try:
                await js.stream_info(name)
                break
            except asyncio.CancelledError:
                raise
            except NotFoundError:
                log.warning(
                    "stream %s does not exist yet; waiting "
                    "(the deploy step `partnermesh nats streams` creates it)",
                    name,
                )
            except Exception as exc:
                log.warning(
                    "JetStream not ready; waiting for stream %s",
                    name,
                    extra={"error": f"{exc.__class__.__name__}: {exc}"},
                )
            await backoff.sleep()
        backoff.reset()


async def provision(
    nats_url: str,
    replicas: int | None = None,
    timeout: float = 60.0,
    auth: BusAuth | None = None,
) -> int:
    """Connect to ``nats_url`` (as ``auth``: on a secured bus, the admin credential) and
    :func:`ensure_streams` (the deploy step); returns the replica count. Gives up after
    ``timeout`` seconds rather than hang a deploy."""
    from mesh.nats import connect

    async def run() -> int:
        nc = await connect(nats_url, "partnermesh-streams", auth)
        try:
            return await ensure_streams(nc.jetstream(), nc, replicas)
        finally:
            await nc.close()

    return await asyncio.wait_for(run(), timeout)


async def ephemeral_reader(
    js: JetStreamContext, filter_subject: str, prefix: str, **config: Any
) -> tuple[JetStreamContext.PullSubscription, str]:
    """A pull subscription to a new ephemeral consumer of the event stream that reads
    ``filter_subject`` only, and its name.

    The consumer is named here (``<prefix>-<random>``) so that its one filter travels in
    the API subject (``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``): that is what a
    process's grants allow (``contracts.bus.ephemeral_filters``), and the server refuses
    a request whose body asks for another filter. ``config`` adds ``ConsumerConfig``
    fields (where to start, the inactivity threshold); acks are off, state in memory."""
    name = f"{prefix}-{secrets.token_hex(8)}"
    settings = ConsumerConfig(
        name=name,
        filter_subject=filter_subject,
        ack_policy=AckPolicy.NONE,
        mem_storage=True,
        num_replicas=1,
        **config,
    )
    info = await js.add_consumer(EVENT_STREAM, settings)
    return await js.pull_subscribe_bind(durable=info.name, stream=EVENT_STREAM), info.name
