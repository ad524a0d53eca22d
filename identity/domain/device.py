"""Device Authorization Grant (RFC 8628): device codes, user codes and the person's say.

A device code is stored as its SHA-256 hash; the user code is 8 letters from an
alphabet without vowels or look-alikes (RFC 8628 §6.1: 20^8 ≈ 2.6·10^10 codes), shown
as ``BCDF-GHJK``, typed in any case, with or without the dash. Wrong user codes are
counted per address, like failed sign-ins, and lock the address out for a while.
Everything lives in the database, so any replica answers any step.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from contracts.claims import Role
from identity.domain.crypto import digest, new_secret
from identity.domain.signin import locked, record_failure
from identity.domain.tokens import Subject, grant_scope
from identity.settings import IdentitySettings
from identity.store import repository as repo
from identity.store.models import DeviceGrant
from identity.store.transaction import Tx

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP_S = 5  # RFC 8628 §3.5
EVERY_ROLE = tuple(r.value for r in Role)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def display(user_code: str) -> str:
    half = USER_CODE_LENGTH // 2
    return f"{user_code[:half]}-{user_code[half:]}"


def normalise(typed: str) -> str:
    """What a person typed, as stored: upper case, the alphabet's letters only."""
    return "".join(c for c in typed.upper() if c in ALPHABET)[: USER_CODE_LENGTH + 1]


def start(
    tx: Tx, settings: IdentitySettings, eco: str, client_id: str, scope: str
) -> tuple[str, str]:
    """A new device authorization for ``scope`` (already within the client's); returns
    (device code, user code)."""
    now = _now()
    repo.drop_expired_device_grants(tx.s, now - timedelta(hours=1))
    device_code = new_secret()
    for _ in range(5):  # a user-code collision among live grants is rare; draw again
        user_code = "".join(secrets.choice(ALPHABET) for _ in range(USER_CODE_LENGTH))
        if repo.device_grant_by_user_code(tx.s, eco, user_code) is None:
            break
    repo.add(
        tx.s,
        DeviceGrant(
            device_code_hash=digest(device_code),
            user_code=user_code,
            eco=eco,
            client_id=client_id,
            scope=scope,
            status="pending",
            interval=settings.device_interval_s,
            expires_at=now + timedelta(seconds=settings.device_code_ttl_s),
        ),
    )
    tx.audit(eco, "device.authorization_started", actor=client_id)
    return device_code, user_code


def client_scope(requested: str | None, client_scopes: list[str]) -> str:
    """The requested scope within the client's (roles are applied on approval);
    :class:`~identity.domain.tokens.UnknownScope` for a scope nobody knows."""
    return grant_scope(requested, client_scopes, EVERY_ROLE)


def _throttle_key(ip: str) -> str:
    return f"device:addr:{ip}"


def guessing_locked(tx: Tx, ip: str) -> bool:
    return locked(tx, (_throttle_key(ip),))


def find_pending(
    tx: Tx, settings: IdentitySettings, eco: str, typed: str, ip: str
) -> DeviceGrant | None:
    """The pending, unexpired grant of a typed user code; a miss counts against ``ip``."""
    row = repo.device_grant_by_user_code(tx.s, eco, normalise(typed))
    if row is None or row.status != "pending" or _aware(row.expires_at) <= _now():
        key = _throttle_key(ip)
        limits = settings.model_copy(
            update={"login_max_failures_address": settings.device_max_failures}
        )
        record_failure(tx, limits, key, key)  # one key: counted once per miss
        return None
    return row


def decide(
    tx: Tx, row: DeviceGrant, person: Subject, allow: bool, client_scopes: list[str]
) -> None:
    """The signed-in person approves or denies; the scope narrows to what their roles allow."""
    row.status = "approved" if allow else "denied"
    row.person_id = person.sub
    row.auth_time = person.auth_time
    row.session_hash = person.extra.get("sid_hash")
    if allow and row.scope:
        row.scope = grant_scope(row.scope, client_scopes, person.roles)
    tx.s.flush()
    tx.audit(
        row.eco,
        "device.approved" if allow else "device.denied",
        actor=person.sub,
        target=row.client_id,
        partner=person.partner,
    )
