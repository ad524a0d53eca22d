"""The identity provider's admin API (ecosystem membership, partners, people), called with the
operator's own token. Identity is not behind the gateway: it is the issuer the gateway trusts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from mesh import safejson
from portal.api import ApiError, reply_json

POLICIES = ("open", "invite", "claims")


class IdentityAdmin:
    def __init__(self, http: httpx.AsyncClient, issuer: str) -> None:
        self.http = http
        self.base = f"{issuer}/admin"

    async def _send(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = await self.http.request(
                method, self.base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError:
            raise ApiError(503, "unavailable", "the identity provider is not reachable") from None
        if resp.status_code >= 400:
            try:
                doc = safejson.loads(resp.content)
            except ValueError:
                doc = {}
            detail = doc.get("detail") if isinstance(doc, dict) else None
            raise ApiError(resp.status_code, "error", str(detail or resp.reason_phrase))
        return reply_json(resp)

    async def ecosystem(self, token: str) -> dict[str, Any]:
        """The ecosystem's settings: name, membership policy and admission rule, lifetimes."""
        return dict(await self._send(token, "GET", "/ecosystem"))

    async def partners(self, token: str) -> list[dict[str, Any]]:
        return list(await self._send(token, "GET", "/partners"))

    async def people(self, token: str) -> list[dict[str, Any]]:
        """Operators: everyone; partner admins: the people of their own company."""
        return list(await self._send(token, "GET", "/people"))

    async def add_partner(
        self, token: str, slug: str, name: str, first_admin_email: str | None = None
    ) -> dict[str, Any]:
        """The company; with ``first_admin_email`` also its first admin's ``invitation``."""
        body = {"slug": slug, "name": name, "first_admin_email": first_admin_email}
        return dict(await self._send(token, "POST", "/partners", json=body))

    async def invite(
        self, token: str, partner: str, roles: list[str], email: str | None
    ) -> dict[str, Any]:
        """A one-time invitation (its ``code``) into ``partner`` with ``roles``."""
        body = {"partner": partner, "roles": roles, "email": email}
        return dict(await self._send(token, "POST", "/invitations", json=body))

    async def set_roles(self, token: str, person: str, roles: list[str]) -> Any:
        return await self._send(
            token, "PATCH", f"/people/{quote(person, safe='')}", json={"roles": roles}
        )

    async def set_active(self, token: str, person: str, active: bool) -> Any:
        return await self._send(
            token, "PATCH", f"/people/{quote(person, safe='')}", json={"active": active}
        )

    async def set_policy(self, token: str, policy: str, rule: dict[str, Any] | None) -> Any:
        body = {"membership_policy": policy, "admission_rule": rule}
        return await self._send(token, "PUT", "/policy", json=body)
