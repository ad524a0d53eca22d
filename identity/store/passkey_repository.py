"""The SQL of passkeys: people's WebAuthn credentials, user handles and challenges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from identity.store.models import Passkey, PasskeyChallenge, PasskeyUser


def user_of(s: Session, person_id: str) -> PasskeyUser | None:
    return s.get(PasskeyUser, person_id)


def user_by_handle(s: Session, handle: str) -> PasskeyUser | None:
    return s.scalars(select(PasskeyUser).where(PasskeyUser.handle == handle)).first()


def passkeys_of(s: Session, eco: str, person_id: str) -> Sequence[Passkey]:
    query = select(Passkey).where(Passkey.eco == eco, Passkey.person_id == person_id)
    return s.scalars(query.order_by(Passkey.created_at, Passkey.id)).all()


def get_passkey(s: Session, passkey_id: str) -> Passkey | None:
    return s.get(Passkey, passkey_id)


def passkey_by_credential(s: Session, credential_hash: str) -> Passkey | None:
    query = select(Passkey).where(Passkey.credential_hash == credential_hash)
    return s.scalars(query).first()


def take_challenge(s: Session, challenge_hash: str) -> PasskeyChallenge | None:
    """Delete the challenge and return what it was: of two ceremonies presenting the same
    challenge at once, one gets it (the delete is one statement)."""
    row = s.execute(
        delete(PasskeyChallenge)
        .where(PasskeyChallenge.challenge_hash == challenge_hash)
        .returning(
            PasskeyChallenge.eco,
            PasskeyChallenge.purpose,
            PasskeyChallenge.person_id,
            PasskeyChallenge.expires_at,
        )
    ).first()
    if row is None:
        return None
    return PasskeyChallenge(
        challenge_hash=challenge_hash,
        eco=row.eco,
        purpose=row.purpose,
        person_id=row.person_id,
        expires_at=row.expires_at,
    )


def drop_challenges_before(s: Session, cutoff: datetime, limit: int = 100) -> None:
    stale = select(PasskeyChallenge.challenge_hash).where(PasskeyChallenge.expires_at < cutoff)
    hashes = list(s.scalars(stale.limit(limit)))
    if hashes:
        s.execute(delete(PasskeyChallenge).where(PasskeyChallenge.challenge_hash.in_(hashes)))
