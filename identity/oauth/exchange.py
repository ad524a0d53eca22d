"""RFC 8693 token exchange: delegation with an ``act`` claim, under per-ecosystem rules.

An ecosystem's ``exchange_rules`` say which client may exchange which tokens::

    {"client": "portal", "subject_clients": ["mesh-cli"] or "*", "scopes": [...],
     "same_partner": false}

A token is exchanged only when a rule names the requesting client and the subject
token's client; the new token keeps the subject, adds ``act`` (nesting any earlier
actor), never gains scope and never outlives the subject token.

Across an active alliance (rules tagged with it, :mod:`identity.domain.alliance_rules`)
a client of the allied ecosystem ``b`` authenticates here as ``<client_id>@<b>`` with
its own credentials at ``b`` (:class:`AlliedClient`), and exchanges a token of ``b``
that it could exchange at ``b`` itself: a token issued to it, or one ``b``'s own rules
let it exchange (the portal's people, a back-end's own partner's people).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin

from identity.domain import alliance_rules
from identity.domain.tokens import Subject, roles_allow
from identity.oauth.access_tokens import (
    AccessTokenView,
    decode_access_token,
    decode_own_access_token,
    issuer_of,
    origin_eco,
)
from identity.oauth.adapter import ClientView, current
from identity.oauth.grants import CONFIDENTIAL_METHODS, quoted
from identity.store import repository as repo
from identity.store.models import Client

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]  # authlib ships no types
    error = "invalid_target"


class AlliedClient(ClientView):
    """A client of an allied ecosystem (``home``), at this ecosystem's token endpoint:
    ``client_id`` is ``<its id>@<home>``; it may only exchange tokens."""

    def __init__(self, row: Client, home: str) -> None:
        super().__init__(row)
        self.home = home
        self.client_id = f"{row.client_id}@{home}"

    def get_client_id(self) -> str:
        return self.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and super().check_endpoint_auth_method(method, endpoint)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE and super().check_grant_type(grant_type)


def allied_client(client_id: str) -> AlliedClient | None:
    """``<client>@<eco>``: a client of ``eco`` when the request is a token exchange and an
    alliance rule of the current ecosystem admits that ecosystem's clients (else unknown
    here: no other grant or endpoint knows allied clients)."""
    local, _, home = client_id.rpartition("@")
    call = current()
    if call.extras.get("exchange") is not True:
        return None
    admitted = any(
        alliance_rules.is_alliance_rule(r) and r[alliance_rules.CLIENT_ECOSYSTEM] == home
        for r in call.eco.exchange_rules or []
    )
    other = repo.get_ecosystem(call.tx.s, home) if admitted and local else None
    if other is None or other.disabled_at is not None:
        return None
    row = repo.get_client(call.tx.s, home, local)
    return AlliedClient(row, home) if row is not None else None


def _names(rule: dict[str, Any], client: ClientView) -> bool:
    """Does ``rule`` name ``client`` (one of this ecosystem's, or an allied one)?"""
    if isinstance(client, AlliedClient):
        return (
            alliance_rules.is_alliance_rule(rule)
            and rule[alliance_rules.CLIENT_ECOSYSTEM] == client.home
            and rule.get("client") in (alliance_rules.ANY_CLIENT, client.row.client_id)
        )
    return rule.get("client") == client.client_id and not alliance_rules.is_alliance_rule(rule)


def find_rule(
    rules: list[dict[str, Any]], client: ClientView, subject: dict[str, Any], origin: str | None
) -> dict[str, Any] | None:
    """The first rule that lets ``client`` exchange ``subject`` (from ``origin`` if federated)."""
    for rule in rules:
        if not _names(rule, client):
            continue
        if (origin is None) != (not rule.get("from_ecosystems")):
            continue
        if origin is not None and origin not in rule["from_ecosystems"]:
            continue
        allowed = rule.get("subject_clients", "*")
        if allowed != "*" and subject.get("client_id") not in allowed:
            continue
        if rule.get("same_partner") and subject.get("partner") != client.row.partner:
            continue
        return rule
    return None


def _check_allied(client: AlliedClient, subject: dict[str, Any], origin: str | None) -> None:
    """A client of ``home`` exchanges here only what it could exchange at ``home``."""
    if origin != client.home:
        raise InvalidRequestError(
            f"a client of {client.home} exchanges only tokens of {client.home} here"
        )
    if subject.get("client_id") == client.row.client_id:
        return
    home = repo.get_ecosystem(current().tx.s, client.home)
    plain = ClientView(client.row)
    if home is None or find_rule(home.exchange_rules or [], plain, subject, None) is None:
        raise InvalidRequestError(
            f"{client.home}'s exchange rules do not let {client.row.client_id} exchange this token"
        )


class TokenExchangeGrant(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]  # authlib ships no types
    GRANT_TYPE = GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def _token(
        self, name: str, federated: bool = False
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(claims, origin ecosystem when issued by another ecosystem of this deployment)."""
        form = self.request.form
        value = form.get(name)
        if not value:
            return None, None
        if form.get(f"{name}_type") != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"{name}_type must be {ACCESS_TOKEN_TYPE}")
        origin = origin_eco(value) if federated else None
        claims = decode_access_token(value, origin) if origin else decode_own_access_token(value)
        if claims is None or AccessTokenView(claims).is_revoked():
            raise InvalidGrantError(f"the {name} is invalid, expired or revoked")
        # exchanged across an alliance before it was suspended or ended: cut off, not to
        # be laundered into a fresh token
        if alliance_rules.cut_off(current().tx, origin or current().eco.slug, claims):
            raise InvalidGrantError(f"the {name} has been revoked")
        return claims, origin

    def validate_token_request(self) -> None:
        client: ClientView = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("the client may not use token exchange")
        self.request.client = client
        requested = self.request.form.get("requested_token_type")
        if requested and requested != ACCESS_TOKEN_TYPE:
            # RFC 8693 §2.2.2: refuse what is not issued here rather than issue another type
            raise InvalidRequestError(
                f"requested_token_type {quoted(requested)} is not issued here; "
                f"only {ACCESS_TOKEN_TYPE}"
            )
        subject, origin = self._token("subject_token", federated=True)
        if subject is None:
            raise InvalidRequestError("missing subject_token")
        actor, _ = self._token("actor_token")
        audience = self.request.form.get("audience") or self.server.audience
        if audience != self.server.audience:
            raise InvalidTargetError(f"tokens for audience {audience!r} are not issued here")
        if isinstance(client, AlliedClient):
            _check_allied(client, subject, origin)
        rule = find_rule(current().eco.exchange_rules or [], client, subject, origin)
        if rule is None:
            raise InvalidRequestError("this ecosystem's exchange rules do not allow this exchange")
        floor = 0
        if alliance_rules.is_alliance_rule(rule):
            found = alliance_rules.issue_floor(current().tx, rule[alliance_rules.TAG])
            if found is None:
                raise InvalidRequestError(f"the alliance with {origin} is not active")
            floor = found
        self.request.extras = {
            "subject": subject,
            "actor": actor,
            "rule": rule,
            "origin": origin,
            "floor": floor,
        }

    def _scope(self, subject: dict[str, Any], rule: dict[str, Any], roles: tuple[str, ...]) -> str:
        held = set(subject.get("scope", "").split())
        ceiling = {s for s in held & set(rule.get("scopes", held)) if roles_allow(s, roles)}
        requested = set((self.request.payload.scope or "").split())
        if requested - ceiling:
            raise InvalidScopeError("the exchanged token cannot gain scope")
        return " ".join(sorted(requested or ceiling))

    def create_token_response(self) -> tuple[int, dict[str, Any], Any]:
        call = current()
        extras = self.request.extras
        subject, actor, rule = extras["subject"], extras["actor"], extras["rule"]
        client: ClientView = self.request.client
        act: dict[str, Any] = (
            {"sub": actor["sub"], "client_id": actor["client_id"]}
            if actor
            else {"sub": client.client_id, "client_id": client.client_id}
        )
        if subject.get("act"):
            act["act"] = subject["act"]
        call.act = act
        user = self._subject(subject, rule, extras["origin"])
        self.request.user = user
        # Across an alliance that became active within this second, iat is the next second:
        # the cut-off of an earlier suspension or end (iat before its whole second) must not
        # refuse it. A second ahead is within every verifier's leeway.
        now = int(time.time())
        issued = max(now, extras["floor"])
        if issued > now:
            call.extras["issued_at"] = issued
        remaining = int(subject["exp"]) - issued
        ttl = min(client.row.access_ttl or call.eco.access_ttl, remaining)
        token = self.generate_token(
            user=user,
            scope=self._scope(subject, rule, user.roles),
            expires_in=max(ttl, 1),
            include_refresh_token=False,
        )
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _subject(
        self, subject: dict[str, Any], rule: dict[str, Any], origin: str | None
    ) -> Subject:
        """The new token's subject; across an alliance, partner and roles come from the rule."""
        if origin is None:
            return Subject(
                sub=subject["sub"],
                partner=subject.get("partner"),
                roles=tuple(subject.get("roles", [])),
                is_person=False,
            )
        current().fed = {"iss": issuer_of(origin), "eco": origin, "partner": subject.get("partner")}
        partner = rule.get("partner")
        if isinstance(partner, dict):
            partner = partner.get(str(subject.get("partner")))
        roles = tuple(r for r in rule.get("roles", ["member"]) if r != "operator")
        return Subject(sub=subject["sub"], partner=partner, roles=roles, is_person=False)
