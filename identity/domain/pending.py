"""A sign-in half done: the password (or a passkey without user verification, where
the policy requires more) was right, a second factor (or its enrolment) is
still due. It is no session: it is kept in its own cookie, sealed (AES-256-GCM, a
context of its own, so no other sealed value passes for it), lives five minutes, and
only the second-factor and enrolment pages read it."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag

from identity.domain.crypto import Sealer

TTL_S = 300
_CONTEXT = b"partnermesh pending sign-in"


@dataclass(frozen=True)
class Pending:
    eco: str
    person_id: str
    return_to: str
    expires: int
    amr: tuple[str, ...] = ("pwd",)


def start(eco: str, person_id: str, return_to: str, amr: tuple[str, ...] = ("pwd",)) -> Pending:
    """A sign-in whose first step (``amr``: a password, or a passkey) was right."""
    return Pending(eco, person_id, return_to, int(time.time()) + TTL_S, amr)


def seal(sealer: Sealer, pending: Pending) -> str:
    return sealer.seal(json.dumps(asdict(pending)).encode(), _CONTEXT)


def unseal(sealer: Sealer, value: str | None, eco: str) -> Pending | None:
    """The pending sign-in in ``value``, if it is one of ``eco``'s and still lasts."""
    if not value:
        return None
    try:
        data = json.loads(sealer.open(value, _CONTEXT))
        pending = Pending(
            str(data["eco"]),
            str(data["person_id"]),
            str(data["return_to"]),
            int(data["expires"]),
            tuple(str(a) for a in data["amr"]),
        )
    except (InvalidTag, ValueError, KeyError, TypeError):
        return None
    if pending.eco != eco or pending.expires <= time.time():
        return None
    return pending
