"""The identity provider's admin API (ecosystem membership, partners, people), called with the
operator's own token. Identity is not behind the gateway: it is the issuer the gateway trusts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from mesh import safejson
from portal.api import ApiError, plain_errors, reply_json

POLICIES = ("open", "invite", "claims")
ALLIANCE_STEPS = ("accept", "reject", "suspend", "resume", "end")


class IdentityAdmin:
    def __init__(self, http: httpx.AsyncClient, issuer: str) -> None:
        self.http = http
        self.issuer = issuer
        self.base = f"{issuer}/admin"

    async def _send(
        self, token: str, method: str, path: str, *, admin: bool = True, **kwargs: Any
    ) -> Any:
        base = self.base if admin else self.issuer
        try:
            resp = await self.http.request(
                method, base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError:
            raise ApiError(503, "unavailable", "the identity provider is not reachable") from None
        if resp.status_code >= 400:
            try:
                doc = safejson.loads(resp.content)
            except ValueError:
                doc = {}
            doc = doc if isinstance(doc, dict) else {}
            detail = str(doc.get("detail") or resp.reason_phrase)
            if resp.status_code in (400, 422):
                detail = plain_errors(doc.get("errors")) or detail
            raise ApiError(resp.status_code, "error", detail)
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

    # -- a partner's SCIM provisioning: its directory's tokens and group rules ----------

    @staticmethod
    def _scim(partner: str, rest: str) -> str:
        return f"/partners/{quote(partner, safe='')}/scim-{rest}"

    async def scim_tokens(self, token: str, partner: str) -> list[dict[str, Any]]:
        """The partner's directory tokens (never their secrets), oldest first."""
        return list(await self._send(token, "GET", self._scim(partner, "tokens")))

    async def issue_scim_token(
        self, token: str, partner: str, name: str, ttl_s: int | None
    ) -> dict[str, Any]:
        """A new token: the reply carries its secret ``token`` (once) and ``scim_url``."""
        body = {"name": name, "ttl_s": ttl_s}
        return dict(await self._send(token, "POST", self._scim(partner, "tokens"), json=body))

    async def revoke_scim_token(self, token: str, partner: str, token_id: str) -> None:
        path = self._scim(partner, f"tokens/{quote(token_id, safe='')}")
        await self._send(token, "DELETE", path)

    async def scim_rules(self, token: str, partner: str) -> dict[str, Any]:
        """``{"rules": [{"group", "roles"}], "grantable": [roles the caller may map]}``."""
        return dict(await self._send(token, "GET", self._scim(partner, "role-rules")))

    async def set_scim_rules(
        self, token: str, partner: str, rules: list[dict[str, Any]]
    ) -> dict[str, Any]:
        path = self._scim(partner, "role-rules")
        return dict(await self._send(token, "PUT", path, json={"rules": rules}))

    # -- alliances with other ecosystems of this deployment (operators of both sides) ----

    @staticmethod
    def _alliance(alliance: str, rest: str = "") -> str:
        return f"/alliances/{quote(alliance, safe='')}{rest}"

    async def allies(self, token: str) -> dict[str, str]:
        """The ecosystem's active allies, any member may read: ecosystem → brand."""
        found = await self._send(token, "GET", "/alliances", admin=False)
        allies = found.get("allies", []) if isinstance(found, dict) else []
        return {str(a["ecosystem"]): str(a.get("name") or a["ecosystem"]) for a in allies}

    async def alliances(self, token: str) -> list[dict[str, Any]]:
        """Every alliance of the ecosystem, in any status (``AllianceState`` each)."""
        found = await self._send(token, "GET", "/alliances")
        if isinstance(found, dict):  # a page ({"alliances": [...]}) or a bare list
            found = found.get("alliances") or found.get("items") or []
        return [a for a in found if isinstance(a, dict)]

    async def alliance_peers(self, token: str) -> list[dict[str, Any]]:
        """The other ecosystems an alliance may be proposed to: ``{ecosystem, name}`` each."""
        found = await self._send(token, "GET", "/alliances/peers")
        return [p for p in found if isinstance(p, dict)]

    async def alliance(self, token: str, alliance: str) -> dict[str, Any]:
        """One alliance with its audit trail (``audit``: who changed what, when)."""
        return dict(await self._send(token, "GET", self._alliance(alliance)))

    async def propose_alliance(
        self, token: str, peer: str, terms: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        body = {"peer": peer, "terms": terms}
        return dict(await self._send(token, "POST", "/alliances", json=body))

    async def counter_alliance(
        self, token: str, alliance: str, terms: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        path = self._alliance(alliance, "/counter")
        return dict(await self._send(token, "POST", path, json={"terms": terms}))

    async def alliance_step(self, token: str, alliance: str, step: str) -> dict[str, Any]:
        """``accept``, ``reject``, ``suspend``, ``resume`` or ``end`` (withdraw)."""
        if step not in ALLIANCE_STEPS:
            raise ApiError(404, "not_found", "no such page")
        path = self._alliance(alliance, f"/{step}")
        return dict(await self._send(token, "POST", path) or {})
