"""SCIM discovery (RFC 7644 §4): ServiceProviderConfig, ResourceTypes and Schemas, read
without a token, per ecosystem."""

from __future__ import annotations

from tests.identity.conftest import IdP
from tests.identity.scim_support import GROUP, SCIM_JSON, USER, assert_scim_error

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


async def _get(idp: IdP, path: str, eco: str = "acme") -> dict[str, object]:
    resp = await idp.http.get(f"{idp.url}/eco/{eco}/scim/v2{path}")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(SCIM_JSON)
    doc: dict[str, object] = resp.json()
    return doc


async def test_service_provider_config(idp: IdP) -> None:
    doc = await _get(idp, "/ServiceProviderConfig")
    assert doc["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert doc["patch"] == {"supported": True} and doc["etag"] == {"supported": True}
    assert doc["filter"] == {"supported": True, "maxResults": 200}
    assert doc["bulk"]["supported"] is False and doc["sort"] == {"supported": False}  # type: ignore[index]
    schemes = doc["authenticationSchemes"]
    assert isinstance(schemes, list) and schemes[0]["type"] == "oauthbearertoken"


async def test_resource_types(idp: IdP) -> None:
    doc = await _get(idp, "/ResourceTypes")
    assert doc["schemas"] == [LIST] and doc["totalResults"] == 2
    kinds = {r["id"]: r for r in doc["Resources"]}  # type: ignore[attr-defined]
    assert kinds["User"]["endpoint"] == "/Users" and kinds["User"]["schema"] == USER
    assert kinds["Group"]["endpoint"] == "/Groups" and kinds["Group"]["schema"] == GROUP
    one = await _get(idp, "/ResourceTypes/Group")
    assert one["id"] == "Group"


async def test_schemas(idp: IdP) -> None:
    doc = await _get(idp, "/Schemas")
    ids = {s["id"] for s in doc["Resources"]}  # type: ignore[attr-defined]
    assert ids == {USER, GROUP}
    user = await _get(idp, f"/Schemas/{USER}")
    attrs = {a["name"]: a for a in user["attributes"]}  # type: ignore[attr-defined]
    assert attrs["userName"]["uniqueness"] == "server" and attrs["userName"]["required"]
    assert attrs["password"]["returned"] == "never"
    assert attrs["groups"]["mutability"] == "readOnly"
    assert {s["name"] for s in attrs["emails"]["subAttributes"]} == {"value", "type", "primary"}


async def test_unknown_things_are_scim_404s(idp: IdP) -> None:
    for path in ("/ResourceTypes/Printer", f"/Schemas/{USER}x"):
        assert_scim_error(await idp.http.get(f"{idp.issuer}/scim/v2{path}"), 404)
    gone = await idp.http.get(f"{idp.url}/eco/no-such-eco/scim/v2/ServiceProviderConfig")
    assert_scim_error(gone, 404)
    users = await idp.http.get(f"{idp.url}/eco/no-such-eco/scim/v2/Users")
    assert_scim_error(users, 404)
