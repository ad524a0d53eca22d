"""The connector's composition: runtime, vault, invoker; opening back-end targets."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from mesh.db import Database
from mesh.groupcommit import GroupCommit
from mesh.runtime import ServiceRuntime
from services.connector import repository as repo
from services.connector.audit import audit_commit
from services.connector.invoker import Invoker, Target
from services.connector.models import Backend
from services.connector.plans import PlanCache
from services.connector.settings import ConnectorSettings
from services.connector.vault import Vault

log = logging.getLogger(__name__)


@dataclass
class Connector:
    rt: ServiceRuntime
    settings: ConnectorSettings
    vault: Vault
    invoker: Invoker
    plans: PlanCache
    audit: GroupCommit  # audit records, committed in batches (services.connector.audit)
    delivery_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # this connector's flow runner: a new flow wakes it, as a finished one frees a slot (an
    # Event binds to the loop that first waits on it, so each connector has its own)
    flow_wake: asyncio.Event = field(default_factory=asyncio.Event)
    _wake_pending: bool = False

    @classmethod
    def build(cls, rt: ServiceRuntime) -> Connector:
        settings = rt.settings
        assert isinstance(settings, ConnectorSettings)
        vault = Vault(settings.secret_key, settings.previous_secret_keys)
        plans = PlanCache(settings.plan_cache_ttl_s)
        cx = cls(rt, settings, vault, Invoker(settings), plans, audit_commit(rt.db))
        rt.db.on_commit(cx._after_commit)
        cx.plans.watch(rt.db.engine.sync_engine)
        return cx

    def wake_deliveries_after_commit(self) -> None:
        self._wake_pending = True

    def _after_commit(self) -> None:
        if self._wake_pending:
            self._wake_pending = False
            self.delivery_wake.set()

    @property
    def db(self) -> Database:
        return self.rt.db

    async def open_json(self, s: AsyncSession, secret_id: str | None) -> dict[str, str]:
        if not secret_id:
            return {}
        sealed = await repo.get_secret(s, secret_id)
        return json.loads(self.vault.open(secret_id, sealed)) if sealed else {}

    async def target(self, s: AsyncSession, backend: Backend) -> Target:
        secret = await self.open_json(s, backend.secret_id)
        return Target(
            backend_id=backend.id,
            eco=backend.eco,
            base_url=backend.base_url,
            auth_kind=backend.auth_kind,
            auth={**backend.auth_public, **secret},
            server_ca_pem=backend.server_ca_pem,
            version=backend.credential_version,
        )

    async def reseal(self) -> int:
        """Re-encrypt every vault row sealed under an older key (key rotation)."""
        count = 0
        async with self.db.transaction() as s:
            for row in await repo.all_secrets(s):
                if self.vault.needs_reseal(row.ciphertext):
                    plain = self.vault.open(row.id, row.ciphertext)
                    await repo.put_secret(s, row.id, self.vault.seal(row.id, plain))
                    count += 1
        if count:
            log.info("vault re-sealed under the current key", extra={"secrets": count})
        return count

    async def lifetime(self) -> None:
        """Background task: re-seal at start; at stop, close back-end clients, stop watching."""
        await self.reseal()
        try:
            await asyncio.Event().wait()
        finally:
            self.plans.unwatch()
            await self.invoker.aclose()
