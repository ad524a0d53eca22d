"""NATS edge of the matching service: each operation's handler ``fn(claims, req)``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from contracts.bus import consumer
from contracts.policy import Operation
from contracts.v1 import matching as m
from mesh.runtime import ServiceRuntime
from mesh.service import Handler
from services.matching import stats
from services.matching.service import Matching
from services.matching.settings import MatchingSettings

# Declared in contracts (contracts.bus.CONSUMERS), where the bus permissions come from.
SIGNALS = consumer("matching-signals")
CONSUMER = SIGNALS.durable


def register(rt: ServiceRuntime) -> Matching:
    settings = rt.settings if isinstance(rt.settings, MatchingSettings) else MatchingSettings()
    svc = Matching(rt.db, rt.outbox, settings)
    flow = svc.flow
    routes: dict[Operation, Handler] = {
        m.PERSON_SUGGESTIONS: svc.person_suggestions,
        m.PARTNER_SUGGESTIONS: svc.partner_suggestions,
        m.OPTIMISE_INTRODUCTIONS: svc.optimise,
        m.FIND_EXPERTS: svc.find_experts,
        m.SET_PREFERENCES: svc.set_preferences,
        m.LIST_INTRODUCTIONS: flow.list,
        m.INTRODUCTION_TIMELINE: partial(stats.introduction_timeline, rt.db, settings),
        m.GET_INTRODUCTION: flow.get,
        m.PROPOSE_INTRODUCTION: flow.propose,
        m.ACCEPT_INTRODUCTION: flow.accept,
        m.DECLINE_INTRODUCTION: flow.decline,
        m.CURATE_INTRODUCTION: flow.curate,
    }
    rt.endpoints(routes)

    handlers: dict[str, Callable[[Any, Any], Awaitable[None]]] = {
        "pm.v1.profile.person_updated": svc.person_updated,
        "pm.v1.profile.company_updated": svc.company_updated,
        "pm.v1.collaboration.content_created": svc.content_created,
        "pm.v1.collaboration.workspace_membership": svc.membership_changed,
        "pm.v1.identity.alliance_changed": svc.alliance_changed,
    }

    async def on_event(session: Any, event: Any) -> None:
        await handlers[event.type](session, event)

    rt.consume(CONSUMER, SIGNALS.filter_subjects, on_event)

    async def keep_index() -> None:
        """Build the in-memory index from the database, then follow every replica's changes."""
        await svc.store.rebuild()
        await svc.store.follow(settings.index_sync_interval)

    rt.background("index", keep_index)

    async def refit_experts() -> None:
        """Expert finding's weights learn from each ecosystem's forum outcomes."""
        await asyncio.sleep(settings.expert_refit_interval)  # after the first build
        await svc.store.refit_all(settings.expert_refit_interval)

    rt.background("expert-refit", refit_experts)
    return svc
