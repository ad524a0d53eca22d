"""All SQL of the identity provider. Functions take a synchronous ``Session``.

The provider runs its logic (and authlib's synchronous grant machinery) inside
``AsyncSession.run_sync``, so these queries run on the async drivers without threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from identity.store.models import (
    AuthCode,
    Client,
    Consent,
    DeviceGrant,
    Ecosystem,
    InitialAccessToken,
    Invitation,
    LoginSession,
    LoginThrottle,
    LogoutDelivery,
    Partner,
    Person,
    PushedRequest,
    RefreshToken,
    RevokedAccessToken,
    SessionClient,
    SigningKey,
    UpstreamProvider,
    UsedAssertion,
)


def get_ecosystem(s: Session, slug: str) -> Ecosystem | None:
    return s.get(Ecosystem, slug)


def list_ecosystems(s: Session) -> Sequence[Ecosystem]:
    return s.scalars(select(Ecosystem).order_by(Ecosystem.slug)).all()


def get_partner(s: Session, eco: str, slug: str) -> Partner | None:
    return s.get(Partner, (eco, slug))


def list_partners(s: Session, eco: str) -> Sequence[Partner]:
    return s.scalars(select(Partner).where(Partner.eco == eco).order_by(Partner.slug)).all()


def get_person(s: Session, person_id: str) -> Person | None:
    return s.get(Person, person_id)


def person_by_username(s: Session, eco: str, username: str) -> Person | None:
    query = select(Person).where(Person.eco == eco, Person.username == username)
    return s.scalars(query).first()


def person_by_upstream(s: Session, eco: str, upstream: str) -> Person | None:
    return s.scalars(select(Person).where(Person.eco == eco, Person.upstream == upstream)).first()


def list_people(s: Session, eco: str, partner: str | None = None) -> Sequence[Person]:
    query = select(Person).where(Person.eco == eco)
    if partner:
        query = query.where(Person.partner == partner)
    return s.scalars(query.order_by(Person.username)).all()


def get_client(s: Session, eco: str, client_id: str) -> Client | None:
    return s.get(Client, (eco, client_id))


def list_clients(s: Session, eco: str) -> Sequence[Client]:
    return s.scalars(select(Client).where(Client.eco == eco).order_by(Client.client_id)).all()


def add(s: Session, row: object) -> None:
    s.add(row)
    s.flush()


def remove(s: Session, row: object) -> None:
    s.delete(row)
    s.flush()


# --- keys -------------------------------------------------------------------------------


def keys_of(s: Session, eco: str) -> Sequence[SigningKey]:
    query = select(SigningKey).where(SigningKey.eco == eco).order_by(SigningKey.created_at)
    return s.scalars(query).all()


def drop_expired_keys(s: Session, eco: str, now: datetime) -> None:
    s.execute(
        delete(SigningKey).where(
            SigningKey.eco == eco, SigningKey.state == "retired", SigningKey.retire_until < now
        )
    )


# --- codes, refresh tokens, revocations --------------------------------------------------


def get_code(s: Session, code_hash: str) -> AuthCode | None:
    return s.get(AuthCode, code_hash, with_for_update=True)


def get_refresh(s: Session, token_hash: str) -> RefreshToken | None:
    return s.get(RefreshToken, token_hash, with_for_update=True)


def revoke_family(s: Session, family_id: str) -> int:
    result = s.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked.is_(False))
        .values(revoked=True)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_person_refresh(s: Session, eco: str, person_id: str) -> None:
    s.execute(
        update(RefreshToken)
        .where(RefreshToken.eco == eco, RefreshToken.person_id == person_id)
        .values(revoked=True)
    )


def revoke_session_refresh(s: Session, sid_hash: str) -> None:
    s.execute(
        update(RefreshToken).where(RefreshToken.session_hash == sid_hash).values(revoked=True)
    )


def revoke_client_refresh(s: Session, eco: str, client_id: str) -> None:
    s.execute(
        update(RefreshToken)
        .where(RefreshToken.eco == eco, RefreshToken.client_id == client_id)
        .values(revoked=True)
    )


def revoke_eco_refresh(s: Session, eco: str) -> None:
    s.execute(update(RefreshToken).where(RefreshToken.eco == eco).values(revoked=True))


def live_access_tokens(
    s: Session,
    now: datetime,
    *,
    family_id: str | None = None,
    eco: str | None = None,
    person_id: str | None = None,
    session_hash: str | None = None,
) -> list[tuple[str, datetime]]:
    """(jti, expiry) of unexpired access tokens issued with refresh tokens of a family,
    a person or a whole ecosystem."""
    query = select(RefreshToken.access_jti, RefreshToken.access_expires_at).where(
        RefreshToken.access_jti.is_not(None), RefreshToken.access_expires_at > now
    )
    if family_id is not None:
        query = query.where(RefreshToken.family_id == family_id)
    if eco is not None:
        query = query.where(RefreshToken.eco == eco)
    if person_id is not None:
        query = query.where(RefreshToken.person_id == person_id)
    if session_hash is not None:
        query = query.where(RefreshToken.session_hash == session_hash)
    return [(str(jti), exp) for jti, exp in s.execute(query).all() if exp is not None]


def revoke_jti(s: Session, jti: str, expires_at: datetime) -> bool:
    """Record ``jti`` as revoked; False if it already was."""
    if s.get(RevokedAccessToken, jti) is not None:
        return False
    s.add(RevokedAccessToken(jti=jti, expires_at=expires_at))
    s.flush()
    return True


def jti_revoked(s: Session, jti: str) -> bool:
    return s.get(RevokedAccessToken, jti) is not None


def assertion_seen(s: Session, key: str, expires_at: datetime) -> bool:
    """Record a client assertion's jti; True if it had been used before."""
    if s.get(UsedAssertion, key) is not None:
        return True
    s.add(UsedAssertion(key=key, expires_at=expires_at))
    s.flush()
    return False


# --- sessions, consents, throttling, invitations, upstreams ------------------------------


def get_session(s: Session, sid_hash: str) -> LoginSession | None:
    return s.get(LoginSession, sid_hash)


def delete_session(s: Session, sid_hash: str) -> None:
    s.execute(delete(LoginSession).where(LoginSession.sid_hash == sid_hash))


def get_consent(s: Session, eco: str, person_id: str, client_id: str) -> Consent | None:
    return s.get(Consent, (eco, person_id, client_id))


def get_throttle(s: Session, key: str) -> LoginThrottle | None:
    return s.get(LoginThrottle, key)


def count_failure(s: Session, key: str, now: datetime, window_start_before: datetime) -> int:
    """One more failure under ``key`` (a window that began before ``window_start_before``
    starts again at ``now``); returns the count in the window. Race-free: the row is made
    with ``INSERT … ON CONFLICT DO NOTHING`` and counted with ``failures = failures + 1``,
    so concurrent failures neither collide nor get lost."""
    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    s.execute(
        dialect.insert(LoginThrottle)
        .values(key=key, failures=0, window_start=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    s.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key, LoginThrottle.window_start < window_start_before)
        .values(failures=0, window_start=now, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    s.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(failures=LoginThrottle.failures + 1)
        .execution_options(synchronize_session=False)
    )
    return int(s.scalar(select(LoginThrottle.failures).where(LoginThrottle.key == key)) or 0)


def lock_throttle(s: Session, key: str, until: datetime) -> None:
    s.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(locked_until=until)
        .execution_options(synchronize_session=False)
    )


def clear_throttle(s: Session, key: str) -> None:
    s.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


def get_invitation(s: Session, code_hash: str) -> Invitation | None:
    return s.get(Invitation, code_hash, with_for_update=True)


def find_invitation(s: Session, code_hash: str) -> Invitation | None:
    """An invitation read without a lock (to show, not to use)."""
    return s.get(Invitation, code_hash)


def get_upstream(s: Session, eco: str, alias: str) -> UpstreamProvider | None:
    return s.get(UpstreamProvider, (eco, alias))


def list_upstreams(s: Session, eco: str) -> Sequence[UpstreamProvider]:
    return s.scalars(select(UpstreamProvider).where(UpstreamProvider.eco == eco)).all()


# --- pushed authorization requests (RFC 9126) ---------------------------------------------


def get_pushed(s: Session, uri_hash: str) -> PushedRequest | None:
    return s.get(PushedRequest, uri_hash, with_for_update=True)


def drop_pushed_before(s: Session, cutoff: datetime) -> None:
    """Forget pushed requests that expired before ``cutoff``."""
    s.execute(delete(PushedRequest).where(PushedRequest.expires_at < cutoff))


def sessions_of(s: Session, eco: str, person_id: str) -> list[str]:
    query = select(LoginSession.sid_hash).where(
        LoginSession.eco == eco, LoginSession.person_id == person_id
    )
    return list(s.scalars(query).all())


def expired_sessions(s: Session, now: datetime, limit: int) -> list[tuple[str, str]]:
    query = (
        select(LoginSession.eco, LoginSession.sid_hash)
        .where(LoginSession.expires_at <= now)
        .limit(limit)
    )
    return [(str(eco), str(sid)) for eco, sid in s.execute(query).all()]


# --- back-channel logout -----------------------------------------------------------------


def get_session_client(s: Session, sid_hash: str, client_id: str) -> SessionClient | None:
    return s.get(SessionClient, (sid_hash, client_id))


def session_clients(s: Session, sid_hash: str) -> Sequence[SessionClient]:
    return s.scalars(select(SessionClient).where(SessionClient.sid_hash == sid_hash)).all()


def forget_session_clients(s: Session, sid_hash: str) -> None:
    s.execute(delete(SessionClient).where(SessionClient.sid_hash == sid_hash))


def due_deliveries(s: Session, now: datetime, limit: int) -> Sequence[LogoutDelivery]:
    query = (
        select(LogoutDelivery)
        .where(LogoutDelivery.next_attempt_at <= now)
        .order_by(LogoutDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return s.scalars(query).all()


# --- device authorization grant (RFC 8628) -----------------------------------------------


def get_device_grant(s: Session, device_code_hash: str) -> DeviceGrant | None:
    return s.get(DeviceGrant, device_code_hash, with_for_update=True)


def device_grant_by_user_code(s: Session, eco: str, user_code: str) -> DeviceGrant | None:
    query = select(DeviceGrant).where(DeviceGrant.eco == eco, DeviceGrant.user_code == user_code)
    return s.scalars(query.with_for_update()).first()


def drop_expired_device_grants(s: Session, before: datetime) -> None:
    s.execute(delete(DeviceGrant).where(DeviceGrant.expires_at < before))


# --- dynamic client registration (RFC 7591/7592) -----------------------------------------


def initial_token_by_hash(s: Session, token_hash: str) -> InitialAccessToken | None:
    query = select(InitialAccessToken).where(InitialAccessToken.token_hash == token_hash)
    return s.scalars(query.with_for_update()).first()


def get_initial_token(s: Session, eco: str, token_id: str) -> InitialAccessToken | None:
    row = s.get(InitialAccessToken, token_id)
    return row if row is not None and row.eco == eco else None


def list_initial_tokens(s: Session, eco: str, partner: str | None) -> Sequence[InitialAccessToken]:
    query = select(InitialAccessToken).where(InitialAccessToken.eco == eco)
    if partner is not None:
        query = query.where(InitialAccessToken.partner == partner)
    return s.scalars(query.order_by(InitialAccessToken.created_at)).all()
