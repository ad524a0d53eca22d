"""The alliance terms form: two directions ("ours": what this ecosystem shares with and
grants to the other; "theirs": what the other one shares with and grants to us), read
from form fields and checked against the contract before anything is sent, so a mistake
comes back as a sentence next to the form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from contracts.claims import Scope
from contracts.v1.alliances import (
    ALL_PARTNERS,
    AllianceStatus,
    Curators,
    DirectionTerms,
    Introductions,
    Sharing,
)
from portal.api import PLAIN
from portal.forms import split_tags, text

SIDES = ("ours", "theirs")
ROLES = ("member", "partner_admin", "broker")
SCOPES = tuple(s.value for s in Scope if s is not Scope.ADMIN)
SHARING = tuple(s.value for s in Sharing)
INTRODUCTIONS = tuple(i.value for i in Introductions)
CURATORS = tuple(c.value for c in Curators)
ECO_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
STATUSES = tuple(s.value for s in AllianceStatus)
FIELD_NAMES = {
    "share": "what is shared",
    "roles": "roles",
    "scopes": "scopes",
    "introductions": "introductions",
    "curators": "curators",
    "connector_partners": "partners who may grant connector operations",
}


@dataclass
class Draft:
    """What the form shows: the peer and both directions as plain values."""

    peer: str = ""
    terms: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {s: DirectionTerms().model_dump(mode="json") for s in SIDES}
    )
    errors: list[str] = field(default_factory=list)


def from_state(state: dict[str, Any], me: str) -> Draft:
    """The form pre-filled from an alliance as it stands (to counter it)."""
    peer = next((e for e in state.get("ecosystems", []) if e != me), "")
    terms = state.get("terms") or {}
    draft = Draft(peer=peer)
    for side, owner in zip(SIDES, (me, peer), strict=True):
        if isinstance(terms.get(owner), dict):
            draft.terms[side] = {**draft.terms[side], **terms[owner]}
    return draft


def _direction(form: Any, side: str) -> dict[str, Any]:
    partners = split_tags(text(form, f"{side}_partners"), limit=500)
    return {
        "share": text(form, f"{side}_share", Sharing.NOTHING.value),
        "roles": [str(v) for v in form.getlist(f"{side}_roles")],
        "scopes": [str(v) for v in form.getlist(f"{side}_scopes")],
        "introductions": text(form, f"{side}_introductions", Introductions.NONE.value),
        "curators": text(form, f"{side}_curators", Curators.OWNER.value),
        "connector_partners": [ALL_PARTNERS] if ALL_PARTNERS in partners else partners,
    }


def _sentences(side: str, exc: ValidationError) -> list[str]:
    label = "What we share" if side == "ours" else "What they share"
    said = []
    for error in exc.errors():
        names = [FIELD_NAMES.get(str(p), str(p)) for p in error["loc"] if not isinstance(p, int)]
        why = PLAIN.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
        where = f" › {names[0]}" if names else ""
        said.append(f"{label}{where}: {why}.")
    return said


def read(form: Any, me: str, *, with_peer: bool) -> Draft:
    """The form's values; ``errors`` says in sentences what must change before sending."""
    draft = Draft(peer=text(form, "peer").lower() if with_peer else "")
    if with_peer:
        if not draft.peer:
            draft.errors.append("Name the ecosystem to ally with.")
        elif not ECO_ID.match(draft.peer):
            draft.errors.append(
                "The ecosystem id is lower-case letters, digits and dashes (like “globex”)."
            )
        elif draft.peer == me:
            draft.errors.append("An ecosystem cannot ally with itself: name another one.")
    for side in SIDES:
        values = _direction(form, side)
        draft.terms[side] = values
        try:
            DirectionTerms.model_validate(values)
        except ValidationError as exc:
            draft.errors.extend(_sentences(side, exc))
    return draft


def by_owner(draft: Draft, me: str, peer: str) -> dict[str, dict[str, Any]]:
    """The terms as the identity provider takes them: keyed by the ecosystem that owns them."""
    return {me: draft.terms["ours"], peer: draft.terms["theirs"]}
