"""The authlib side: the client model, the per-call context and our FastAPI/Starlette adapter.

authlib's grant machinery is synchronous; every call runs inside one database
transaction through ``AsyncSession.run_sync`` (greenlets, no threads), with the
current :class:`Call` in a context variable so authlib's callbacks find their session.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload, OAuth2Request

from identity.domain.crypto import digest
from identity.oauth.client_credentials import auth_method_allowed, secret_accepted
from identity.oauth.redirects import redirect_allowed
from identity.store.models import Client, Ecosystem
from identity.store.transaction import Tx


@dataclass
class Call:
    """What authlib's callbacks need for the request being handled."""

    tx: Tx
    eco: Ecosystem
    issuer: str
    ip: str = ""
    family_id: str | None = None
    act: dict[str, Any] | None = None
    fed: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[Call] = contextvars.ContextVar("identity_call")


def current() -> Call:
    return _current.get()


def enter(call: Call) -> None:
    _current.set(call)


class ClientView(ClientMixin):  # type: ignore[misc]  # authlib ships no types
    """A registered client, as authlib sees it."""

    def __init__(self, row: Client) -> None:
        self.row = row
        self.client_id = row.client_id

    @property
    def is_public(self) -> bool:
        return self.row.auth_method == "none"

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in self.row.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_allowed(
            redirect_uri, self.row.redirect_uris, native=self.row.application_type == "native"
        )

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_accepted(self.row, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return auth_method_allowed(self.row, method)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


class FormPayload(OAuth2Payload):  # type: ignore[misc]  # authlib ships no types
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteRequest(OAuth2Request):  # type: ignore[misc]  # authlib ships no types
    """An OAuth2Request built from what the FastAPI handler already read (query and form)."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Any,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = FormPayload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form
