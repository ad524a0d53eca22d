"""What every handler needs, built once by the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from identity.domain.crypto import Passwords, Sealer
from identity.domain.dpop import IdentityDPoP
from identity.domain.dpop import build as build_dpop
from identity.domain.keys import KeyRing
from identity.http.backchannel import BackChannel
from identity.lean.audit import lean_group
from identity.oauth.adapter import Call, enter
from identity.oauth.authorization_server import IdentityServer
from identity.settings import IdentitySettings
from identity.store.cache import TtlCache
from identity.store.transaction import Tx, run_tx
from mesh.db import Database
from mesh.groupcommit import GroupCommit
from mesh.outbox import Outbox

T = TypeVar("T")
PACKAGE_DIR = Path(__file__).parents[1]  # identity/: templates/ and static/


@dataclass
class IdentityRuntime:
    settings: IdentitySettings
    db: Database
    outbox: Outbox
    sealer: Sealer
    keys: KeyRing
    passwords: Passwords
    server: IdentityServer
    templates: Jinja2Templates
    http: httpx.AsyncClient
    group: GroupCommit
    dpop: IdentityDPoP
    rows: TtlCache = field(default_factory=TtlCache)
    backchannel: BackChannel = field(default_factory=BackChannel)

    async def tx(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_tx(self.db, self.outbox, fn, *args)

    def enter(self, tx: Tx, eco: str, ip: str = "", cached: bool = False) -> Call:
        """Make ``eco`` the current ecosystem of this transaction (404 when unknown).

        ``cached``: read the ecosystem and clients through :attr:`rows` (token endpoints).
        """
        from identity.domain.directory import ecosystem
        from mesh.errors import not_found

        row = self.rows.get((eco,)) if cached else None
        if row is None:
            row = ecosystem(tx, eco)
            if cached:
                self.rows.put((eco,), row)
        if row.disabled_at is not None:  # a disabled ecosystem's issuer is gone
            raise not_found("ecosystem")
        call = Call(tx=tx, eco=row, issuer=self.settings.issuer(eco), ip=ip)
        call.extras.update(keys=self.keys, code_ttl=self.settings.code_ttl_s)
        if cached:
            call.extras["rows"] = self.rows
        enter(call)
        return call


def build_runtime(
    settings: IdentitySettings,
    db: Database,
    outbox: Outbox,
    http: httpx.AsyncClient,
    redis_client: Any = None,
) -> IdentityRuntime:
    sealer = Sealer(settings.key_encryption_secret)
    keys = KeyRing(sealer)
    templates = Jinja2Templates(directory=str(PACKAGE_DIR / "templates"))
    return IdentityRuntime(
        settings=settings,
        db=db,
        outbox=outbox,
        sealer=sealer,
        keys=keys,
        passwords=Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        ),
        server=IdentityServer(keys, settings.audience),
        templates=templates,
        http=http,
        # stateless grants' audit events: lean, a SQLite file's own writer; else a session
        group=lean_group(db, outbox) if settings.lean else GroupCommit(db, outbox),
        dpop=build_dpop(settings, redis_client),
    )


def get_runtime(request: Request) -> IdentityRuntime:
    rt: IdentityRuntime = request.app.state.rt
    return rt


RuntimeDep = Annotated[IdentityRuntime, Depends(get_runtime)]


def client_ip(request: Request) -> str:
    """The client's address: the TCP peer's, or, behind a configured proxy, the one it
    names in ``X-Forwarded-For`` (:func:`trust_proxies`). The server itself must not
    rewrite it (``python -m identity`` runs uvicorn with ``proxy_headers=False``)."""
    return request.client.host if request.client else "unknown"


def trust_proxies(app: Any, settings: IdentitySettings) -> None:
    """Honour ``X-Forwarded-For``/``-Proto`` from ``settings.trusted_proxies`` only
    (uvicorn's middleware: the right-most address not itself a trusted proxy)."""
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
