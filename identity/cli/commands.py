"""Commands that work on the database directly (no server needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from identity.cli import seed, seed_ally
from identity.domain import directory, ecosystems, keys
from identity.domain.crypto import Passwords, Sealer
from identity.settings import IdentitySettings
from identity.store import models
from identity.store.transaction import Tx, run_tx
from mesh import migrate
from mesh.db import Database
from mesh.errors import MeshError
from mesh.outbox import Outbox


class CliError(RuntimeError):
    pass


async def _with_db(settings: IdentitySettings, fn: Any, *args: Any) -> Any:
    db = Database(settings.database_url_or_default("identity"), models.metadata)
    outbox = Outbox(models.metadata)
    try:
        try:
            await migrate.prepare(db, settings.migrates_on_start(), wait=False)
        except migrate.SchemaBehind as exc:
            raise CliError(str(exc)) from None
        return await run_tx(db, outbox, fn, *args)
    finally:
        await db.dispose()


async def seed_demo(
    settings: IdentitySettings,
    out: Path,
    hashes: dict[str, str] | None = None,
    portal_url: str | None = None,
) -> dict[str, Any]:
    """Seed the demo ecosystem; the portal client redirects to ``portal_url`` (kept current
    on every run, so moving the mesh to other ports keeps sign-in working)."""
    sealer = Sealer(settings.key_encryption_secret)
    if hashes is None:
        passwords = Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )
        hashes = await asyncio.to_thread(seed.hash_demo_passwords, passwords)
    existing = seed.read_credentials(out)
    portal_url = portal_url or seed.DEFAULT_PORTAL_URL
    fresh = existing is None
    # the ally's secrets are new too when the file was written before the ally was seeded
    ally_fresh = existing is None or seed_ally.ECO not in existing.get("allies", {})

    def work(tx: Tx) -> tuple[dict[str, str], dict[str, str]]:
        ours = seed.seed(tx, sealer, hashes, fresh, portal_url)
        return ours, seed_ally.seed(tx, sealer, hashes, ally_fresh)

    secrets, ally_secrets = await _with_db(settings, work)
    ally = seed_ally.credentials(settings.issuer(seed_ally.ECO), ally_secrets, seed.PASSWORD)
    if existing is not None:
        doc = existing
        issuer = settings.issuer(seed.ECO)
        known = doc.setdefault("allies", {}).get(seed_ally.ECO)
        changed = seed.refresh_urls(doc, issuer, portal_url)
        if not secrets and not ally_secrets and not changed and known is not None:
            return doc
        for cid, secret in secrets.items():  # clients added since the file was written
            doc["clients"].setdefault(cid, {"client_id": cid})["client_secret"] = secret
        if known is None:
            doc["allies"][seed_ally.ECO] = ally
        for cid, secret in ally_secrets.items():
            doc["allies"][seed_ally.ECO]["clients"][cid]["client_secret"] = secret
    else:
        doc = seed.credentials(settings.issuer(seed.ECO), secrets, portal_url)
        doc["allies"] = {seed_ally.ECO: ally}
    seed.write_once(out, doc)
    return doc


async def rotate_keys(settings: IdentitySettings, eco: str) -> dict[str, Any]:
    sealer = Sealer(settings.key_encryption_secret)

    def work(tx: Tx) -> dict[str, Any]:
        row = directory.ecosystem(tx, eco)
        return keys.rotate(tx, eco, sealer, max(row.access_ttl, 3600))

    try:
        result: dict[str, Any] = await _with_db(settings, work)
    except MeshError as exc:
        raise CliError(f"cannot rotate keys of {eco!r}: {exc.detail}") from None
    return result


async def set_access_token_alg(settings: IdentitySettings, eco: str, alg: str) -> dict[str, Any]:
    """Choose the JWS algorithm of an ecosystem's access tokens (running servers follow
    within their cache lifetime, a few seconds)."""

    def work(tx: Tx) -> dict[str, Any]:
        row = directory.update_ecosystem(tx, eco, {"access_token_alg": alg}, "cli")
        return {"eco": eco, "access_token_alg": keys.access_token_alg(row)}

    try:
        result: dict[str, Any] = await _with_db(settings, work)
    except MeshError as exc:
        raise CliError(f"cannot set the access-token algorithm of {eco!r}: {exc.detail}") from None
    return result


async def create_ecosystem(
    settings: IdentitySettings,
    eco: str,
    name: str,
    partner: tuple[str, str],
    operator: str,
    password: str,
) -> dict[str, Any]:
    """Bootstrap an ecosystem: its keys, a first partner, an operator and the public CLI client."""
    sealer = Sealer(settings.key_encryption_secret)
    passwords = Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    hashed = await asyncio.to_thread(passwords.hash, password)

    def work(tx: Tx) -> dict[str, Any]:
        boot = ecosystems.Bootstrap(partner[0], partner[1], operator, password_hash=hashed)
        made = ecosystems.create(tx, eco, name, sealer, "cli", bootstrap=boot)
        assert made.operator is not None
        return {"eco": eco, "issuer": settings.issuer(eco), "operator": made.operator.id}

    try:
        result: dict[str, Any] = await _with_db(settings, work)
    except MeshError as exc:
        raise CliError(f"cannot create ecosystem {eco!r}: {exc.detail}") from None
    return result
