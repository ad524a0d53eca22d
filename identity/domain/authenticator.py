"""A person's authenticator app (TOTP) and recovery codes, as stored.

The key is sealed (AES-256-GCM under the deployment's key-encryption secret, bound to
the person), recovery codes are kept as MACs under that secret. Enrolment is two steps:
:func:`begin` keeps a new key unconfirmed and :func:`confirm` makes it the person's
factor once they typed a code of it; only then are recovery codes made (shown once).
"""

from __future__ import annotations

from datetime import UTC, datetime

from identity.domain import totp
from identity.domain.crypto import Sealer
from identity.store import factor_repository as factor_repo
from identity.store import repository as repo
from identity.store.models import Person, TotpFactor
from identity.store.transaction import Tx
from mesh.errors import conflict

# what a code proved: the authenticator, or a recovery code (spent)
BY_APP, BY_RECOVERY = "totp", "recovery"


def _context(person_id: str) -> bytes:
    return b"totp:" + person_id.encode()


def _recovery_hash(sealer: Sealer, person_id: str, code: str) -> str:
    return sealer.keyed_hash(b"recovery codes", f"{person_id}:{totp.normal_recovery_code(code)}")


def enrolled(tx: Tx, person_id: str) -> bool:
    row = factor_repo.get_totp(tx.s, person_id)
    return row is not None and row.confirmed_at is not None


def begin(tx: Tx, sealer: Sealer, person: Person) -> bytes:
    """A new key, kept unconfirmed (replacing an earlier unconfirmed one)."""
    row = factor_repo.get_totp(tx.s, person.id, lock=True)
    if row is not None and row.confirmed_at is not None:
        raise conflict("an authenticator app is already set up; disable it first")
    key = totp.new_key()
    sealed = sealer.seal(key, _context(person.id))
    if row is None:
        now = datetime.now(UTC)
        repo.add(
            tx.s, TotpFactor(person_id=person.id, eco=person.eco, secret_enc=sealed, created_at=now)
        )
    else:
        row.secret_enc, row.last_step = sealed, None
        tx.s.flush()
    return key


def pending_key(tx: Tx, sealer: Sealer, person_id: str) -> bytes | None:
    """The key of an enrolment in progress, if any."""
    row = factor_repo.get_totp(tx.s, person_id)
    if row is None or row.confirmed_at is not None:
        return None
    return sealer.open(row.secret_enc, _context(person_id))


def confirm(tx: Tx, sealer: Sealer, person: Person, code: str) -> list[str] | None:
    """Make the pending key the person's factor if ``code`` is its current code; returns
    the new recovery codes (to show once), or None for a wrong code."""
    row = factor_repo.get_totp(tx.s, person.id)
    if row is None or row.confirmed_at is not None:
        return None
    step = totp.matching_step(sealer.open(row.secret_enc, _context(person.id)), code, None)
    if step < 0 or not factor_repo.confirm_totp(tx.s, person.id, step, datetime.now(UTC)):
        return None
    codes = _recovery_codes(tx, sealer, person)
    tx.audit(
        person.eco,
        "second_factor.enrolled",
        actor=person.id,
        target=person.id,
        partner=person.partner,
        factor="totp",
    )
    return codes


def _recovery_codes(tx: Tx, sealer: Sealer, person: Person) -> list[str]:
    codes = totp.new_recovery_codes()
    hashes = [_recovery_hash(sealer, person.id, c) for c in codes]
    factor_repo.replace_recovery_codes(tx.s, person.id, hashes)
    return codes


def new_recovery_codes(tx: Tx, sealer: Sealer, person: Person) -> list[str] | None:
    """A new set of recovery codes for a person with an app (the old set is gone)."""
    if not enrolled(tx, person.id):
        return None
    tx.audit(
        person.eco,
        "second_factor.recovery_codes_renewed",
        actor=person.id,
        target=person.id,
        partner=person.partner,
    )
    return _recovery_codes(tx, sealer, person)


def check(tx: Tx, sealer: Sealer, person: Person, code: str) -> str | None:
    """What ``code`` proves of ``person``: a code of their app for a later step than
    any accepted before (:data:`BY_APP`), or an unspent recovery code, now spent
    (:data:`BY_RECOVERY`); None otherwise."""
    row = factor_repo.get_totp(tx.s, person.id)
    if row is None or row.confirmed_at is None:
        return None
    key = sealer.open(row.secret_enc, _context(person.id))
    step = totp.matching_step(key, code, row.last_step)
    if step >= 0:  # and not taken by a request with the same code meanwhile
        return BY_APP if factor_repo.claim_step(tx.s, person.id, step) else None
    if not totp.looks_like_recovery_code(code):
        return None
    spent = factor_repo.spend_recovery_code(
        tx.s, _recovery_hash(sealer, person.id, code), person.id, datetime.now(UTC)
    )
    if not spent:
        return None
    left = factor_repo.unused_recovery_codes(tx.s, person.id)
    tx.audit(
        person.eco,
        "second_factor.recovery_code_used",
        actor=person.id,
        target=person.id,
        partner=person.partner,
        left=left,
    )
    return BY_RECOVERY


def disable(tx: Tx, person: Person, actor: str) -> None:
    """Remove the app and the recovery codes."""
    factor_repo.delete_totp(tx.s, person.id)
    factor_repo.delete_recovery_codes(tx.s, person.id)
    tx.audit(
        person.eco,
        "second_factor.disabled",
        actor=actor,
        target=person.id,
        partner=person.partner,
        factor="totp",
    )


def recovery_left(tx: Tx, person_id: str) -> int:
    return factor_repo.unused_recovery_codes(tx.s, person_id)
