"""``python -m services.matching rebuild [--replay]``: rebuild the matching index from scratch.

Without ``--replay`` the index is rebuilt from the profiles and ties in the database
(and running replicas are told to rebuild theirs). With ``--replay`` the database's
profiles and ties are first cleared and re-derived from the whole event history in
JetStream, in order, through the same handlers the live consumer uses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic_settings import SettingsConfigDict

from contracts.bus import REBUILD, consumer, inbox_prefix
from contracts.registry import decode_events
from contracts.subjects import EVENT_STREAM
from mesh import migrate
from mesh.db import Database
from mesh.nats import BusAuth, connect, ensure_event_stream
from mesh.outbox import Outbox
from mesh.settings import BusSettings
from services.matching import models
from services.matching import repository as repo
from services.matching.service import Matching
from services.matching.settings import MatchingSettings

# What the live consumer reads (contracts.bus), so a replay derives the same state.
SIGNALS = consumer("matching-signals")


class RebuildBusSettings(BusSettings):
    """The rebuild tool's own bus identity: ``PM_MATCHING_REBUILD_NATS_NKEY_SEED_FILE``…"""

    model_config = SettingsConfigDict(env_prefix="PM_MATCHING_REBUILD_", extra="ignore")


async def replay(svc: Matching, nats_url: str) -> int:
    """Re-apply every profile and collaboration event in the stream; return how many."""
    bus = RebuildBusSettings()
    auth = BusAuth.from_settings(bus)
    if auth.nkey_seed_file and not auth.inbox_prefix:
        auth = BusAuth(auth.nkey_seed_file, inbox_prefix(REBUILD), auth.tls_ca_file)
    nc = await connect(nats_url, REBUILD, auth)
    try:
        js = nc.jetstream()
        await ensure_event_stream(js)
        cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE)
        cfg.filter_subjects = SIGNALS.filter_subjects
        sub = await js.pull_subscribe("", stream=EVENT_STREAM, config=cfg)
        handlers = _handlers(svc)
        applied = 0
        async with svc.db.transaction() as s:
            await repo.clear_signals(s)
        pending = (await sub.consumer_info()).num_pending
        while pending:
            try:
                msgs = await sub.fetch(256, timeout=2.0)
            except (NatsTimeoutError, TimeoutError):
                break
            for msg in msgs:
                pending = msg.metadata.num_pending
                for event in decode_events(msg.data):
                    async with svc.db.transaction() as s:
                        await handlers[event.type](s, event)
                    applied += 1
        await sub.unsubscribe()
        return applied
    finally:
        await nc.drain()


def _handlers(svc: Matching) -> dict[str, Any]:
    return {
        "pm.v1.profile.person_updated": svc.person_updated,
        "pm.v1.profile.company_updated": svc.company_updated,
        "pm.v1.collaboration.content_created": svc.content_created,
        "pm.v1.collaboration.workspace_membership": svc.membership_changed,
    }


async def rebuild(settings: MatchingSettings, with_replay: bool) -> dict[str, Any]:
    outbox = Outbox(models.metadata)
    db = Database(settings.database_url_or_default("matching"), models.metadata)
    try:
        await migrate.prepare(db, settings.migrates_on_start(), wait=False)
        svc = Matching(db, outbox, settings)
        replayed = await replay(svc, settings.nats_url) if with_replay else None
        stats: dict[str, Any] = await svc.store.rebuild()
        async with db.transaction() as s:
            for eco in svc.store.ecos:
                await repo.mark_rebuild(s, eco)
        stats["replayed_events"] = replayed
        return stats
    finally:
        await db.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.matching rebuild")
    parser.add_argument(
        "--replay", action="store_true", help="re-derive profiles and ties from the event history"
    )
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(rebuild(MatchingSettings(), args.replay))))
    return 0
