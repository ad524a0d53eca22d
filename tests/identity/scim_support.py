"""What the SCIM tests share: a directory's client on plain HTTP, admin calls, users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.identity.conftest import IdP

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass
class Directory:
    """A partner's directory: its SCIM token and base URL."""

    http: httpx.AsyncClient
    base: str
    token: str
    partner: str
    token_id: str = ""

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        hdrs = {"Authorization": f"Bearer {token or self.token}", **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = SCIM_JSON
        return await self.http.request(
            method, f"{self.base}{path}", json=body, headers=hdrs, params=params
        )

    async def create_user(self, **fields: Any) -> dict[str, Any]:
        user = fields.pop("userName", None) or unique("user")
        body = {"schemas": [USER], "userName": user, **fields}
        resp = await self.call("POST", "/Users", body)
        assert resp.status_code == 201, resp.text
        doc: dict[str, Any] = resp.json()
        return doc

    async def patch(
        self, kind: str, rid: str, *ops: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = {"schemas": [PATCH_OP], "Operations": list(ops)}
        return await self.call("PATCH", f"/{kind}/{rid}", body, headers)

    async def find(self, kind: str, filter_text: str, **params: str) -> dict[str, Any]:
        resp = await self.call("GET", f"/{kind}", params={"filter": filter_text, **params})
        assert resp.status_code == 200, resp.text
        doc: dict[str, Any] = resp.json()
        return doc


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_call(
    idp: IdP, token: str, method: str, path: str, body: Any = None
) -> httpx.Response:
    return await idp.http.request(
        method, f"{idp.issuer}/admin{path}", json=body, headers=bearer(token)
    )


async def issue_directory(idp: IdP, admin_token: str, partner: str) -> Directory:
    resp = await admin_call(
        idp, admin_token, "POST", f"/partners/{partner}/scim-tokens", {"name": "directory"}
    )
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert doc["scim_url"] == f"{idp.issuer}/scim/v2"
    return Directory(idp.http, doc["scim_url"], doc["token"], partner, doc["id"])


def assert_scim_error(resp: httpx.Response, status: int, scim_type: str | None = None) -> None:
    """An RFC 7644 §3.12 error: its status, schema, scimType, and the SCIM media type."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(SCIM_JSON), resp.headers
    doc = resp.json()
    assert doc["schemas"] == [ERROR] and doc["status"] == str(status), doc
    assert doc.get("scimType") == scim_type, doc
