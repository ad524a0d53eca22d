"""SCIM 2.0 (RFC 7643/7644) for a partner's directory: ``{iss}/scim/v2/…``.

A bearer token issued by a partner's admin (:mod:`identity.http.scim_admin`) speaks for
that partner: its people (``/Users``) and groups (``/Groups``), nobody else's. Errors are
SCIM error documents (``application/scim+json``), not problem documents. Discovery
(``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``) needs no token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from identity.domain import scim_groups, scim_schema, scim_users
from identity.domain.scim_admin import Directory, authenticate
from identity.domain.scim_common import (
    Page,
    ScimError,
    check_version,
    from_mesh,
    not_found,
    read_json,
    select_attributes,
)
from identity.domain.scim_patch import password_of
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store.transaction import Tx
from mesh.errors import MeshError
from mesh.tokens import bearer

router = APIRouter(prefix="/eco/{eco}/scim/v2", tags=["scim"])
SCIM_JSON = "application/scim+json"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
Work = Callable[[Tx, Directory], Any]


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type=SCIM_JSON)


def _error(exc: ScimError, eco: str, rt: IdentityRuntime) -> Response:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="{rt.settings.issuer(eco)}/scim/v2"'
    return _json(exc.body(), exc.status, headers)


def base_url(rt: IdentityRuntime, eco: str) -> str:
    return f"{rt.settings.issuer(eco)}/scim/v2"


async def _call(request: Request, rt: IdentityRuntime, eco: str, work: Work) -> Any:
    """Run ``work`` for the directory the bearer token speaks for, in one transaction."""
    token = bearer(request.headers.get("authorization"))

    def run(tx: Tx) -> Any:
        rt.enter(tx, eco)
        return work(tx, authenticate(tx, eco, token))

    try:
        result = await rt.tx(run)
    except MeshError as exc:
        raise from_mesh(exc) from None
    if request.method != "GET":
        rt.rows.forget(eco)
        rt.backchannel.wake()  # a deactivated person's sessions may owe logout tokens
    return result


async def _answer(
    request: Request, rt: IdentityRuntime, eco: str, work: Work, status: int = 200
) -> Response:
    """A resource (with its ETag and, when created, its Location), or a SCIM error."""
    try:
        doc = await _call(request, rt, eco, work)
    except ScimError as exc:
        return _error(exc, eco, rt)
    if doc is None:
        return Response(status_code=204)
    tag = doc["meta"]["version"]
    if status == 200 and request.method == "GET":
        if request.headers.get("if-none-match", "").removeprefix("W/") == tag.removeprefix("W/"):
            return Response(status_code=304, headers={"ETag": tag})
        params = request.query_params
        doc = select_attributes(doc, params.get("attributes"), params.get("excludedAttributes"))
    headers = {"ETag": tag}
    if status == 201:
        headers["Location"] = doc["meta"]["location"]
    return _json(doc, status, headers)


async def _body(request: Request) -> dict[str, Any]:
    return read_json(await request.body())


async def _password_hash(rt: IdentityRuntime, body: dict[str, Any]) -> str | None:
    password = password_of(body)
    return await asyncio.to_thread(rt.passwords.hash, password) if password else None


def _if_match(request: Request) -> Callable[[str], None]:
    sent = request.headers.get("if-match")
    return lambda current: check_version(current, sent)


async def _list(request: Request, rt: IdentityRuntime, eco: str, search: Any) -> Response:
    """A query: its parameters in the URL (GET) or a SearchRequest body (POST /.search)."""
    try:
        if request.method == "POST":
            params = search_request(await _body(request))
        else:
            params = {k: v for k, v in request.query_params.items()}
        page = Page.of(params.get("startIndex"), params.get("count"))
        doc = await _call(
            request, rt, eco, lambda tx, who: search(tx, who, params.get("filter"), page)
        )
        attrs, excluded = params.get("attributes"), params.get("excludedAttributes")
        doc["Resources"] = [select_attributes(r, attrs, excluded) for r in doc["Resources"]]
    except ScimError as exc:
        return _error(exc, eco, rt)
    return _json(doc)


def search_request(body: dict[str, Any]) -> dict[str, str]:
    """A SearchRequest (RFC 7644 §3.4.3) as the query parameters of a GET."""
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST not in schemas:
        raise ScimError(400, f"a search names the schema {SEARCH_REQUEST}", "invalidSyntax")
    params = {}
    for key in ("filter", "startIndex", "count", "attributes", "excludedAttributes"):
        value = body.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if (value is not None and not isinstance(value, str | int)) or isinstance(value, bool):
            raise ScimError(400, f"{key} is not what a SearchRequest holds", "invalidValue")
        if value is not None:
            params[key] = str(value)
    return params


# --- Users ----------------------------------------------------------------------------------


@router.get("/Users")
async def list_users(request: Request, eco: str, rt: RuntimeDep) -> Response:
    base = base_url(rt, eco)
    return await _list(
        request, rt, eco, lambda tx, who, f, page: scim_users.search(tx, who, f, page, base)[0]
    )


@router.post("/Users/.search")
async def search_users(request: Request, eco: str, rt: RuntimeDep) -> Response:
    return await list_users(request, eco, rt)


@router.post("/Users")
async def create_user(request: Request, eco: str, rt: RuntimeDep) -> Response:
    try:
        body = await _body(request)
    except ScimError as exc:
        return _error(exc, eco, rt)
    hashed, base = await _password_hash(rt, body), base_url(rt, eco)
    work: Work = lambda tx, who: scim_users.create(tx, who, body, hashed, base)  # noqa: E731
    return await _answer(request, rt, eco, work, 201)


@router.get("/Users/{person_id}")
async def get_user(request: Request, eco: str, person_id: str, rt: RuntimeDep) -> Response:
    base = base_url(rt, eco)
    return await _answer(request, rt, eco, lambda tx, who: scim_users.get(tx, who, person_id, base))


@router.put("/Users/{person_id}")
async def replace_user(request: Request, eco: str, person_id: str, rt: RuntimeDep) -> Response:
    return await _write_user(request, eco, person_id, rt, scim_users.put)


@router.patch("/Users/{person_id}")
async def patch_user(request: Request, eco: str, person_id: str, rt: RuntimeDep) -> Response:
    return await _write_user(request, eco, person_id, rt, scim_users.patch)


async def _write_user(
    request: Request,
    eco: str,
    person_id: str,
    rt: RuntimeDep,
    write: Callable[..., dict[str, Any]],
) -> Response:
    """PUT or PATCH of one person: the body read, the password (if any) hashed, and the
    version checked (``If-Match``) by ``write`` inside the transaction."""
    try:
        body = await _body(request)
    except ScimError as exc:
        return _error(exc, eco, rt)
    hashed, base, check = await _password_hash(rt, body), base_url(rt, eco), _if_match(request)
    return await _answer(
        request, rt, eco, lambda tx, who: write(tx, who, person_id, body, hashed, base, check)
    )


@router.delete("/Users/{person_id}")
async def delete_user(request: Request, eco: str, person_id: str, rt: RuntimeDep) -> Response:
    base, check = base_url(rt, eco), _if_match(request)
    return await _answer(
        request, rt, eco, lambda tx, who: scim_users.delete(tx, who, person_id, base, check)
    )


# --- Groups ---------------------------------------------------------------------------------


@router.get("/Groups")
async def list_groups(request: Request, eco: str, rt: RuntimeDep) -> Response:
    base = base_url(rt, eco)
    return await _list(
        request, rt, eco, lambda tx, who, f, page: scim_groups.search(tx, who, f, page, base)
    )


@router.post("/Groups/.search")
async def search_groups(request: Request, eco: str, rt: RuntimeDep) -> Response:
    return await list_groups(request, eco, rt)


@router.post("/Groups")
async def create_group(request: Request, eco: str, rt: RuntimeDep) -> Response:
    try:
        body = await _body(request)
    except ScimError as exc:
        return _error(exc, eco, rt)
    base = base_url(rt, eco)
    return await _answer(
        request, rt, eco, lambda tx, who: scim_groups.create(tx, who, body, base), 201
    )


@router.get("/Groups/{group_id}")
async def get_group(request: Request, eco: str, group_id: str, rt: RuntimeDep) -> Response:
    base = base_url(rt, eco)
    return await _answer(request, rt, eco, lambda tx, who: scim_groups.get(tx, who, group_id, base))


@router.put("/Groups/{group_id}")
async def replace_group(request: Request, eco: str, group_id: str, rt: RuntimeDep) -> Response:
    return await _write_group(request, eco, group_id, rt, scim_groups.put)


@router.patch("/Groups/{group_id}")
async def patch_group(request: Request, eco: str, group_id: str, rt: RuntimeDep) -> Response:
    return await _write_group(request, eco, group_id, rt, scim_groups.patch)


async def _write_group(
    request: Request,
    eco: str,
    group_id: str,
    rt: RuntimeDep,
    write: Callable[..., dict[str, Any]],
) -> Response:
    """PUT or PATCH of one group: the body read and the version checked (``If-Match``) by
    ``write`` inside the transaction."""
    try:
        body = await _body(request)
    except ScimError as exc:
        return _error(exc, eco, rt)
    base, check = base_url(rt, eco), _if_match(request)
    return await _answer(
        request, rt, eco, lambda tx, who: write(tx, who, group_id, body, base, check)
    )


@router.delete("/Groups/{group_id}")
async def delete_group(request: Request, eco: str, group_id: str, rt: RuntimeDep) -> Response:
    base, check = base_url(rt, eco), _if_match(request)
    return await _answer(
        request, rt, eco, lambda tx, who: scim_groups.delete(tx, who, group_id, base, check)
    )


# --- discovery ------------------------------------------------------------------------------


async def _discovery(rt: IdentityRuntime, eco: str, doc: Any) -> Response:
    try:
        await rt.tx(lambda tx: rt.enter(tx, eco) and None)  # an ecosystem that serves
    except MeshError as exc:
        return _error(from_mesh(exc), eco, rt)
    return _json(doc)


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }


@router.get("/ServiceProviderConfig")
async def service_provider_config(eco: str, rt: RuntimeDep) -> Response:
    base = base_url(rt, eco)
    return await _discovery(rt, eco, scim_schema.service_provider_config(base, base))


@router.get("/ResourceTypes")
async def resource_types(eco: str, rt: RuntimeDep) -> Response:
    return await _discovery(rt, eco, _listed(scim_schema.resource_types(base_url(rt, eco))))


@router.get("/ResourceTypes/{name}")
async def resource_type(eco: str, name: str, rt: RuntimeDep) -> Response:
    found = [r for r in scim_schema.resource_types(base_url(rt, eco)) if r["id"] == name]
    if not found:
        return _error(not_found("resource type"), eco, rt)
    return await _discovery(rt, eco, found[0])


@router.get("/Schemas")
async def schemas(eco: str, rt: RuntimeDep) -> Response:
    return await _discovery(rt, eco, _listed(scim_schema.schemas(base_url(rt, eco))))


@router.get("/Schemas/{urn}")
async def schema(eco: str, urn: str, rt: RuntimeDep) -> Response:
    found = [s for s in scim_schema.schemas(base_url(rt, eco)) if s["id"] == urn]
    if not found:
        return _error(not_found("schema"), eco, rt)
    return await _discovery(rt, eco, found[0])
