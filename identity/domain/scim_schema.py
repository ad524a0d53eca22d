"""SCIM discovery (RFC 7644 §4, RFC 7643 §5-7): what this service provider supports,
its resource types and the schemas of the attributes it keeps."""

from __future__ import annotations

from typing import Any

from identity.domain.scim_common import GROUP, MAX_RESULTS, USER

SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def _attr(
    name: str,
    kind: str = "string",
    *,
    required: bool = False,
    multi: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    case_exact: bool = False,
    subs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": name,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if subs is not None:
        doc["subAttributes"] = subs
    return doc


def _ref(kind: str) -> dict[str, Any]:
    return {**_attr("$ref", "reference", mutability="immutable"), "referenceTypes": [kind]}


USER_ATTRIBUTES = [
    _attr("userName", required=True, uniqueness="server"),
    _attr(
        "name",
        "complex",
        subs=[_attr("formatted"), _attr("givenName"), _attr("familyName")],
    ),
    _attr("displayName"),
    _attr("active", "boolean"),
    _attr("password", mutability="writeOnly", returned="never"),
    _attr(
        "emails",
        "complex",
        multi=True,
        subs=[_attr("value"), _attr("type"), _attr("primary", "boolean")],
    ),
    _attr(
        "groups",
        "complex",
        multi=True,
        mutability="readOnly",
        subs=[
            _attr("value", mutability="readOnly"),
            _attr("display", mutability="readOnly"),
            _ref("Group"),
        ],
    ),
    _attr("roles", "complex", multi=True, mutability="readOnly", subs=[_attr("value")]),
    _attr("externalId", case_exact=True),
]
GROUP_ATTRIBUTES = [
    _attr("displayName", required=True, uniqueness="server"),
    _attr(
        "members",
        "complex",
        multi=True,
        subs=[
            _attr("value", mutability="immutable"),
            _attr("display", mutability="readOnly"),
            _attr("type", mutability="immutable"),
            _ref("User"),
        ],
    ),
    _attr("externalId", case_exact=True),
]


def _meta(base: str, kind: str, path: str) -> dict[str, Any]:
    return {"resourceType": kind, "location": f"{base}/{path}"}


def service_provider_config(base: str, docs: str) -> dict[str, Any]:
    return {
        "schemas": [SPC],
        "documentationUri": docs,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": True},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "SCIM bearer token",
                "description": "A token a partner admin issues for the partner's directory",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": True,
            }
        ],
        "meta": _meta(base, "ServiceProviderConfig", "ServiceProviderConfig"),
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE],
            "id": name,
            "name": name,
            "endpoint": f"/{name}s",
            "description": f"{name}s of the partner's directory",
            "schema": urn,
            "schemaExtensions": [],
            "meta": _meta(base, "ResourceType", f"ResourceTypes/{name}"),
        }
        for name, urn in (("User", USER), ("Group", GROUP))
    ]


def schemas(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [SCHEMA],
            "id": urn,
            "name": name,
            "description": f"{name} of a partner's directory",
            "attributes": attrs,
            "meta": _meta(base, "Schema", f"Schemas/{urn}"),
        }
        for name, urn, attrs in (
            ("User", USER, USER_ATTRIBUTES),
            ("Group", GROUP, GROUP_ATTRIBUTES),
        )
    ]
