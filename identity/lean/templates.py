"""What a lean client-credentials token is built from, worked out once per client.

:func:`identity.lean.shortcut.issue` answers the hottest request of the provider; what
does not change from one token of a client to the next is prepared here once per cached
row and only filled in per token: the grant's decision for the client
(:func:`identity.oauth.client_credentials.decide`, the full path's own; any refusal means the
lean path declines), its secret hash (:class:`Entry`), its claims as JSON cut where
``exp iat jti scope`` go (:class:`Template`), and its ``token.issued`` audit event as
JSON cut where the event id, time and ``jti`` go (:class:`IssuedEvents`). Each template
is built by the full path's own functions (:func:`identity.domain.tokens.access_claims`,
:func:`identity.store.transaction.audit_event`), so it is validated as there; the tests hold the
filled templates byte for byte to what those functions and ``json.dumps`` write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from authlib.oauth2.rfc6749 import OAuth2Error

from contracts.v1.identity import AuditEvent
from identity.domain.tokens import access_claims
from identity.lean.ids import uuid7_hex
from identity.oauth.client_credentials import GRANT, Decision, auth_method_allowed, decide
from identity.oauth.grants import ClientCredentialsGrant
from identity.store.models import Client, Ecosystem
from identity.store.transaction import audit_event
from mesh.errors import MeshError
from mesh.outbox import OutboxRow

# The one client authentication method the lean path reads (the full path reads them all).
METHOD = "client_secret_basic"


def cut(text: str, marks: tuple[str, ...]) -> tuple[str, ...]:
    """``text`` cut at each of ``marks`` (in that order, each there exactly once): the
    pieces a template fills with values in place of the marks."""
    pieces: list[str] = []
    for mark in marks:
        before, found, text = text.partition(mark)
        if not found or mark in text:
            raise ValueError(f"template: {mark!r} is not in it exactly once, in order")
        pieces.append(before)
    pieces.append(text)
    return tuple(pieces)


class Template:
    """The claims of one client's client-credentials tokens, and their JSON cut where
    ``exp iat jti scope`` go (keys in the order of :func:`access_claims`)."""

    __slots__ = ("claims", "json")
    MARKS: tuple[int, int, str, str] = (-1010101011, -2020202021, "@@jti@@", "@@scope@@")

    def __init__(self, claims: dict[str, Any]) -> None:
        exp, iat, jti, scope = self.MARKS
        marked = {**claims, "exp": exp, "iat": iat, "jti": jti, "scope": scope}
        text = json.dumps(marked, separators=(",", ":"))
        self.claims = claims
        self.json = cut(text, tuple(str(mark) for mark in self.MARKS))

    def payload(self, exp: int, iat: int, jti: str, scope: str) -> bytes:
        """``json.dumps(claims, separators=(",", ":"))`` of a token, from the pieces (``jti``
        is hex; ``scope`` is escaped as json escapes it)."""
        a, b, c, d, e = self.json
        return f"{a}{exp}{b}{iat}{c}{jti}{d}{json_text(scope)}{e}".encode()


_TEXTS: dict[str, str] = {}


def json_text(value: str) -> str:
    """What json writes between the quotes of ``value`` (bounded memo: a few scopes)."""
    try:
        return _TEXTS[value]
    except KeyError:
        pass
    text = json.dumps(value)[1:-1]
    if len(_TEXTS) >= 256:
        _TEXTS.clear()
    _TEXTS[value] = text
    return text


class Entry(NamedTuple):
    """A client's lean-path facts: its claims template (None: not for the lean path), the
    access-token algorithm and lifetime the grant decided."""

    template: Template | None
    alg: str
    ttl: int


NOT_LEAN = Entry(None, "", 0)


class Templates:
    """Per client, the grant's decision and the claims of its tokens minus
    ``exp iat jti scope``.

    Worked out once per cached pair of rows by the full path's own functions
    (:func:`identity.oauth.client_credentials.decide`, :func:`access_claims`, so every claim is
    validated by :class:`contracts.claims.Claims` as there); then only those four values
    change per token.
    """

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], tuple[Client, Ecosystem, Entry]] = {}
        self.events = IssuedEvents()
        self._decided: dict[tuple[Ecosystem, Client, str | None], Decision | None] = {}

    def decision(self, eco: Ecosystem, row: Client, requested: str | None) -> Decision | None:
        """:func:`decide` for these rows and ``requested`` (no DPoP proof), once per rows and
        scope; None when the grant refuses (the full path then says why)."""
        key = (eco, row, requested)
        try:
            return self._decided[key]
        except KeyError:
            pass
        try:
            found: Decision | None = decide(eco, row, requested)
        except (OAuth2Error, MeshError):
            found = None
        if len(self._decided) > 4096:
            self._decided.clear()
        self._decided[key] = found
        return found

    def entry(self, rt: Any, eco: Ecosystem, row: Client) -> Entry:
        """What the lean path needs of this client in this ecosystem, worked out once per
        cached pair of rows (a row re-read from the database is a new object)."""
        key = (eco.slug, row.client_id)
        hit = self._items.get(key)
        if hit is not None and hit[0] is row and hit[1] is eco:
            return hit[2]
        try:
            entry = self._entry(rt, eco, row)
        except ValueError:  # claims the full path would refuse too: let it say so
            entry = NOT_LEAN
        if len(self._items) > 4096:
            self._items.clear()
        self._items[key] = (row, eco, entry)
        return entry

    def _entry(self, rt: Any, eco: Ecosystem, row: Client) -> Entry:
        # client authentication as the full path's ClientView checks it, for HTTP Basic
        # (the secret itself is checked per request: a rotated one stops at once)
        if METHOD not in ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS:
            return NOT_LEAN
        if not row.secret_hash or not auth_method_allowed(row, METHOD):
            return NOT_LEAN
        decided = self.decision(eco, row, None)
        if decided is None:
            return NOT_LEAN
        iss = rt.settings.issuer(eco.slug)
        subject = decided.subject
        claims = access_claims(iss, rt.settings.audience, eco.slug, subject, row.client_id, "", 0)
        return Entry(Template(claims), decided.alg, decided.ttl)


def utc_json(now: datetime) -> str:
    """A UTC datetime as pydantic writes it in JSON (``…T13:20:00.000120Z``)."""
    return now.isoformat()[:-6] + "Z"


class IssuedEvents:
    """The outbox row of a lean token's ``token.issued`` audit event, from a template.

    Per (ecosystem, client, subject, partner, scope) the event is built once by
    :func:`issued_event` (validated as on the full path) with markers in place of its
    id, time and ``jti``, and its JSON is cut at the markers; a token's row is then the
    pieces joined around a fresh UUIDv7 id, the time and the token's ``jti``.
    """

    ID, TIME, JTI = "@@id@@", datetime(2000, 1, 1, tzinfo=UTC), "@@jti@@"

    def __init__(self) -> None:
        self._items: dict[tuple[Any, ...], tuple[str, tuple[str, str, str, str]]] = {}

    def row(self, eco: str, client_id: str, claims: dict[str, Any], granted: str) -> OutboxRow:
        key = (eco, client_id, claims["sub"], claims.get("partner"), granted)
        hit = self._items.get(key)
        if hit is None:
            hit = self._build(eco, client_id, claims, granted)
            if len(self._items) > 4096:
                self._items.clear()
            self._items[key] = hit
        subject, (a, b, c, d) = hit
        event_id = uuid7_hex()
        payload = a + event_id + b + utc_json(datetime.now(UTC)) + c + claims["jti"] + d
        return OutboxRow(event_id, subject, payload)

    def _build(
        self, eco: str, client_id: str, claims: dict[str, Any], granted: str
    ) -> tuple[str, tuple[str, str, str, str]]:
        proto = issued_event(eco, client_id, {**claims, "jti": self.JTI}, granted)
        proto = proto.model_copy(update={"id": self.ID, "time": self.TIME})
        a, b, c, d = cut(proto.model_dump_json(), (self.ID, utc_json(self.TIME), self.JTI))
        return OutboxRow.of(proto).subject, (a, b, c, d)


def issued_event(eco: str, client_id: str, claims: dict[str, Any], granted: str) -> AuditEvent:
    """The ``token.issued`` audit event of this token, as the full path records it.

    (Validated construction: pydantic's ``model_construct`` is no faster here, as it
    inspects each default factory's signature on every call.)"""
    return audit_event(
        eco,
        "token.issued",
        actor=client_id,
        target=claims["sub"],
        partner=claims.get("partner"),
        grant_type=GRANT,
        jti=claims["jti"],
        scope=granted,
    )
