"""Sign-in logic: throttling with lockout, browser sessions, consents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from identity.domain.crypto import digest, new_secret, same
from identity.domain.tokens import Subject
from identity.settings import IdentitySettings
from identity.store import repository as repo
from identity.store.models import Consent, LoginSession, Person
from identity.store.transaction import Tx


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def throttle_keys(eco: str, username: str, ip: str) -> tuple[str, str]:
    return f"acct:{eco}:{username.lower()}", f"addr:{ip}"


def locked(tx: Tx, keys: tuple[str, ...]) -> bool:
    now = _now()
    for key in keys:
        row = repo.get_throttle(tx.s, key)
        if row and row.locked_until and _aware(row.locked_until) > now:
            return True
    return False


def record_failure(tx: Tx, settings: IdentitySettings, account: str, address: str) -> None:
    """One more failure for the account and the address; either locks at its limit."""
    _count_failure(
        tx,
        settings,
        {
            account: settings.login_max_failures_account,
            address: settings.login_max_failures_address,
        },
    )


def record_address_failure(tx: Tx, settings: IdentitySettings, address: str) -> None:
    """A failure that names no account (a refused passkey): it counts for the address."""
    _count_failure(tx, settings, {address: settings.login_max_failures_address})


def _count_failure(tx: Tx, settings: IdentitySettings, limits: dict[str, int]) -> None:
    now = _now()
    window_began = now - timedelta(seconds=settings.login_window_s)
    for key, limit in limits.items():
        if repo.count_failure(tx.s, key, now, window_began) >= limit:
            repo.lock_throttle(tx.s, key, now + timedelta(seconds=settings.login_lockout_s))
    tx.s.expire_all()  # rows read before are stale now


def find_person(tx: Tx, eco: str, username: str) -> Person | None:
    person = repo.person_by_username(tx.s, eco, username)
    return person if person and person.active else None


# The query parameter that names the authorization request a sign-in is made for.
TICKET = "login_ticket"


def ticket_of(return_to: str | None) -> str | None:
    """The login ticket in a return address (an authorization request sent to sign in)."""
    values = parse_qs(urlsplit(return_to or "").query).get(TICKET)
    return values[0] if values else None


def start_session(
    tx: Tx,
    settings: IdentitySettings,
    person: Person,
    return_to: str | None = None,
    amr: Sequence[str] | None = None,
) -> tuple[str, int]:
    """A new session; made for the authorization request whose ticket ``return_to``
    carries, that request may count it (once) as the fresh login it asked for. ``amr``:
    how the person proved who they are (RFC 8176), None when not known (brokered)."""
    ticket = ticket_of(return_to)
    sid = new_secret()
    now = _now()
    auth_time = int(now.timestamp())
    repo.add(
        tx.s,
        LoginSession(
            sid_hash=digest(sid),
            eco=person.eco,
            person_id=person.id,
            auth_time=auth_time,
            expires_at=now + timedelta(seconds=settings.session_ttl_s),
            fresh_for=digest(ticket) if ticket else None,
            amr=list(amr) if amr else None,
        ),
    )
    return sid, auth_time


def step_up(tx: Tx, sid: str, amr: list[str], return_to: str | None) -> None:
    """The session's person proved a further factor just now: the session records it
    (``amr``, ``auth_time``), and counts as fresh for the request ``return_to`` names."""
    row = repo.get_session(tx.s, digest(sid))
    if row is None:
        return
    ticket = ticket_of(return_to)
    row.amr = sorted(set(row.amr or []) | set(amr))
    row.auth_time = int(_now().timestamp())
    row.fresh_for = digest(ticket) if ticket else row.fresh_for
    tx.s.flush()


def session_subject(tx: Tx, eco: str, sid: str | None) -> Subject | None:
    if not sid:
        return None
    row = repo.get_session(tx.s, digest(sid))
    if row is None or row.eco != eco or _aware(row.expires_at) <= _now():
        return None
    person = repo.get_person(tx.s, row.person_id)
    if person is None or not person.active:
        return None
    return Subject(
        sub=person.id,
        partner=person.partner,
        roles=tuple(person.roles),
        name=person.name,
        email=person.email,
        username=person.username,
        auth_time=row.auth_time,
        extra={"sid": public_sid(row.sid_hash), "sid_hash": row.sid_hash, "amr": row.amr},
    )


def public_sid(sid_hash: str) -> str:
    """The ``sid`` that ID and logout tokens name for a session (never its cookie value)."""
    return sid_hash[:16]


def live_session(tx: Tx, sid_hash: str | None) -> bool:
    """Whether the login session ``sid_hash`` still lasts (refresh tokens tied to it)."""
    if not sid_hash:
        return False
    row = repo.get_session(tx.s, sid_hash)
    return row is not None and _aware(row.expires_at) > _now()


def session_expiry(tx: Tx, sid_hash: str | None) -> datetime | None:
    row = repo.get_session(tx.s, sid_hash) if sid_hash else None
    return _aware(row.expires_at) if row else None


def fresh_login(tx: Tx, sid: str | None, ticket: str | None) -> LoginSession | None:
    """The session, if it was started for the authorization request holding ``ticket``
    and that request has not spent it yet (:func:`spend_fresh`)."""
    if not sid or not ticket:
        return None
    row = repo.get_session(tx.s, digest(sid))
    if row is None or not row.fresh_for or not same(row.fresh_for, digest(ticket)):
        return None
    return row


def spend_fresh(tx: Tx, row: LoginSession) -> None:
    """The request answered with its fresh login: a replay of it must sign in again."""
    row.fresh_for = None
    tx.s.flush()


def has_consent(tx: Tx, eco: str, person_id: str, client_id: str, scope: str) -> bool:
    row = repo.get_consent(tx.s, eco, person_id, client_id)
    return row is not None and set(scope.split()) <= set(row.scopes)


def give_consent(tx: Tx, eco: str, person_id: str, client_id: str, scope: str) -> None:
    row = repo.get_consent(tx.s, eco, person_id, client_id)
    if row is None:
        repo.add(
            tx.s,
            Consent(
                eco=eco, person_id=person_id, client_id=client_id, scopes=sorted(set(scope.split()))
            ),
        )
    else:
        row.scopes = sorted(set(row.scopes) | set(scope.split()))
        tx.s.flush()
