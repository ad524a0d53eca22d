"""Passkeys (WebAuthn Level 2/3): registration and authentication ceremonies.

The relying party is the ecosystem's issuer: its host is the RP ID and its origin the
only origin accepted. Each ceremony's challenge is kept server-side (hashed), bound to
its purpose, ecosystem and, where known, person; it lives :data:`CHALLENGE_TTL_S` and is
taken (deleted) by the first response that presents it, whether that response then
passes or not, so a response is never accepted twice. The ceremonies' failures are
returned as :class:`Refusal` rather than raised: the caller commits what a failure
changed (the challenge spent, a credential flagged as cloned) and then refuses.

A person's user handle is 32 random bytes of their own (:class:`PasskeyUser`), never
their email or username. Attestation is not asked for ("none"): a passkey proves
possession of its key, not the make of its authenticator.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from identity.domain import factors
from identity.domain.crypto import digest
from identity.store import passkey_repository as keys
from identity.store import repository as repo
from identity.store.models import Passkey, PasskeyChallenge, PasskeyUser, Person
from identity.store.transaction import Tx

REGISTER = "register"
AUTHENTICATE = "authenticate"
CHALLENGE_TTL_S = 180  # the browser's own timeout (TIMEOUT_MS) plus a margin
TIMEOUT_MS = 120_000
NAME_MAX = 100
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


@dataclass(frozen=True)
class RelyingParty:
    """Who the ceremonies are for: the issuer's host (RP ID), origin and display name."""

    id: str
    origin: str
    name: str

    @classmethod
    def of(cls, issuer: str, name: str) -> RelyingParty:
        parts = urlsplit(issuer)
        return cls(parts.hostname or "", f"{parts.scheme}://{parts.netloc}", name)


@dataclass(frozen=True)
class Refusal:
    """Why a ceremony's response was refused: a stable ``reason`` and words for people."""

    reason: str
    detail: str


@dataclass(frozen=True)
class PasskeyUse:
    """A verified assertion: whose passkey it was, which, and whether the user was verified."""

    person: Person
    passkey: Passkey
    user_verified: bool

    def amr(self) -> list[str]:
        """The RFC 8176 methods this passkey proved: ``hwk`` (a key held in hardware), and
        ``user`` when the authenticator verified the user (its PIN or biometric)."""
        return ["hwk", "user"] if self.user_verified else ["hwk"]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- options -------------------------------------------------------------------------


def _new_challenge(tx: Tx, eco: str, purpose: str, person_id: str | None) -> bytes:
    challenge = secrets.token_bytes(32)
    now = _now()
    keys.drop_challenges_before(tx.s, now)  # a few stale ones at a time
    repo.add(
        tx.s,
        PasskeyChallenge(
            challenge_hash=digest(_b64(challenge)),
            eco=eco,
            purpose=purpose,
            person_id=person_id,
            expires_at=now + timedelta(seconds=CHALLENGE_TTL_S),
        ),
    )
    return challenge


def user_handle(tx: Tx, person: Person) -> str:
    """The person's WebAuthn user handle (base64url), made on first use."""
    row = keys.user_of(tx.s, person.id)
    if row is None:
        row = PasskeyUser(person_id=person.id, eco=person.eco, handle=_b64(secrets.token_bytes(32)))
        repo.add(tx.s, row)
    return row.handle


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=_unb64(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports if t in _TRANSPORTS],
        )
        for p in passkeys
    ]


def registration_options(tx: Tx, rp: RelyingParty, person: Person) -> str:
    """``PublicKeyCredentialCreationOptions`` as JSON for a signed-in person."""
    handle = user_handle(tx, person)
    existing = list(keys.passkeys_of(tx.s, person.eco, person.id))
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=_unb64(handle),
        user_name=person.username,
        user_display_name=person.name,
        challenge=_new_challenge(tx, person.eco, REGISTER, person.id),
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json(options)


def authentication_options(tx: Tx, rp: RelyingParty, eco: str, person: Person | None = None) -> str:
    """``PublicKeyCredentialRequestOptions`` as JSON: for anyone (a discoverable
    credential picks the account), or, as a second factor, for ``person``'s passkeys."""
    allowed = list(keys.passkeys_of(tx.s, eco, person.id)) if person else []
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=_new_challenge(tx, eco, AUTHENTICATE, person.id if person else None),
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors([p for p in allowed if p.cloned_at is None]),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options)


# --- responses -----------------------------------------------------------------------


def _parse(response: str) -> dict[str, Any] | None:
    """The credential's JSON, if it is an object whose client data names a challenge."""
    try:
        found = json.loads(response)
        client = json.loads(_unb64(found["response"]["clientDataJSON"]))
        if isinstance(found, dict) and isinstance(client.get("challenge"), str):
            return {**found, "_challenge": client["challenge"]}
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        pass
    return None


def _take(tx: Tx, credential: dict[str, Any], eco: str, purpose: str) -> PasskeyChallenge | Refusal:
    """The challenge the response signed, spent now; or why it cannot be used."""
    row = keys.take_challenge(tx.s, digest(credential["_challenge"]))
    if row is None:
        return Refusal("challenge_unknown", "This passkey request was already used or is unknown.")
    if _aware(row.expires_at) <= _now():
        return Refusal("challenge_expired", "This passkey request expired; try again.")
    if row.eco != eco or row.purpose != purpose:
        return Refusal("challenge_mismatch", "This passkey request was made for something else.")
    return row


def _clean_name(name: str, fallback: str) -> str:
    cleaned = " ".join(name.split())[:NAME_MAX]
    return cleaned or fallback


def register(
    tx: Tx, rp: RelyingParty, person: Person, response: str, name: str
) -> Passkey | Refusal:
    """Verify ``navigator.credentials.create()``'s response and keep the credential."""
    credential = _parse(response)
    if credential is None:
        return Refusal("malformed", "The authenticator's response could not be read.")
    row = _take(tx, credential, person.eco, REGISTER)
    if isinstance(row, Refusal):
        return row
    if row.person_id != person.id:
        return Refusal("challenge_mismatch", "This passkey request was made for someone else.")
    try:
        verified = verify_registration_response(
            credential={k: v for k, v in credential.items() if k != "_challenge"},
            expected_challenge=_unb64(credential["_challenge"]),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
    except Exception as exc:  # anything the library finds wrong in what was sent
        return Refusal("invalid", f"The passkey could not be verified: {exc}")
    credential_id = _b64(verified.credential_id)
    if keys.passkey_by_credential(tx.s, digest(credential_id)) is not None:
        return Refusal("duplicate", "This passkey is registered already.")
    sent = credential.get("response", {}).get("transports") or []
    count = len(keys.passkeys_of(tx.s, person.eco, person.id))
    passkey = Passkey(
        id=uuid.uuid4().hex,
        credential_hash=digest(credential_id),
        credential_id=credential_id,
        eco=person.eco,
        person_id=person.id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=sorted({t for t in sent if isinstance(t, str) and t in _TRANSPORTS}),
        name=_clean_name(name, f"Passkey {count + 1}"),
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        created_at=_now(),
    )
    repo.add(tx.s, passkey)
    tx.audit(
        person.eco, "passkey.registered", actor=person.id, target=person.id, passkey=passkey.id
    )
    return passkey


def authenticate(
    tx: Tx, rp: RelyingParty, eco: str, response: str, person: Person | None = None
) -> PasskeyUse | Refusal:
    """Verify ``navigator.credentials.get()``'s response: a discoverable sign-in, or
    (``person`` given) a second factor, where the passkey must be that person's."""
    credential = _parse(response)
    if credential is None:
        return Refusal("malformed", "The authenticator's response could not be read.")
    row = _take(tx, credential, eco, AUTHENTICATE)
    if isinstance(row, Refusal):
        return row
    if row.person_id is not None and (person is None or person.id != row.person_id):
        return Refusal("challenge_mismatch", "This passkey request was made for someone else.")
    found = _owned(tx, eco, str(credential.get("id") or ""), person)
    if isinstance(found, Refusal):
        return found
    passkey, owner, handle = found
    sent_handle = credential.get("response", {}).get("userHandle")
    if sent_handle and sent_handle != handle:
        return Refusal("wrong_person", "This passkey belongs to another account.")
    try:
        verified = verify_authentication_response(
            credential={k: v for k, v in credential.items() if k != "_challenge"},
            expected_challenge=_unb64(credential["_challenge"]),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,  # compared below, once the signature holds
        )
    except Exception as exc:  # anything the library finds wrong in what was sent
        return Refusal("invalid", f"The passkey could not be verified: {exc}")
    counter = verified.new_sign_count
    if (counter > 0 or passkey.sign_count > 0) and counter <= passkey.sign_count:
        passkey.cloned_at = _now()
        tx.audit(
            eco,
            "passkey.clone_suspected",
            target=owner.id,
            outcome="failure",
            passkey=passkey.id,
            stored=passkey.sign_count,
            presented=counter,
        )
        return Refusal(
            "cloned",
            "This passkey's signature counter went backwards: it may have been copied. "
            "It is blocked; remove it and register a new one.",
        )
    passkey.sign_count = counter
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = _now()
    tx.s.flush()
    return PasskeyUse(owner, passkey, verified.user_verified)


def _owned(
    tx: Tx, eco: str, credential_id: str, person: Person | None
) -> tuple[Passkey, Person, str] | Refusal:
    """The passkey named by ``credential_id``, its owner and their user handle, if it may
    sign in here."""
    passkey = keys.passkey_by_credential(tx.s, digest(credential_id)) if credential_id else None
    if passkey is None or passkey.eco != eco:
        return Refusal("unknown_credential", "This passkey is not registered here.")
    if person is not None and passkey.person_id != person.id:
        return Refusal("wrong_person", "This passkey belongs to another account.")
    if passkey.cloned_at is not None:
        return Refusal("cloned", "This passkey is blocked: it may have been copied.")
    owner = repo.get_person(tx.s, passkey.person_id)
    handle = keys.user_of(tx.s, passkey.person_id)
    if owner is None or not owner.active or handle is None:
        return Refusal("inactive", "This account cannot sign in.")
    return passkey, owner, handle.handle


def second_factor(tx: Tx, rp: RelyingParty, person: Person, response: str) -> list[str] | Refusal:
    """A passkey after a password: the ``amr`` of the session to start (``hwk mfa pwd
    [user]``, :func:`factors.combined`), or why not. Ask with
    :func:`authentication_options` for ``person``."""
    use = authenticate(tx, rp, person.eco, response, person)
    return use if isinstance(use, Refusal) else factors.combined([factors.PWD], use.amr())


# --- management ----------------------------------------------------------------------


def list_passkeys(tx: Tx, person: Person) -> list[Passkey]:
    return list(keys.passkeys_of(tx.s, person.eco, person.id))


def _mine(tx: Tx, person: Person, passkey_id: str) -> Passkey | None:
    row = keys.get_passkey(tx.s, passkey_id)
    return row if row and row.person_id == person.id and row.eco == person.eco else None


def rename(tx: Tx, person: Person, passkey_id: str, name: str) -> bool:
    row = _mine(tx, person, passkey_id)
    if row is None:
        return False
    row.name = _clean_name(name, row.name)
    tx.s.flush()
    tx.audit(person.eco, "passkey.renamed", actor=person.id, target=person.id, passkey=row.id)
    return True


def remove(tx: Tx, person: Person, passkey_id: str) -> bool:
    row = _mine(tx, person, passkey_id)
    if row is None:
        return False
    repo.remove(tx.s, row)
    tx.audit(person.eco, "passkey.removed", actor=person.id, target=person.id, passkey=row.id)
    return True
