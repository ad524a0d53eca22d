"""Back-ends, operations, the catalogue, grants and the egress allow-list."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Protocol

from jsonschema import Draft202012Validator, SchemaError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims
from contracts.v1 import connector as c
from mesh import textsearch
from mesh.errors import bad_request, conflict, not_found
from services.connector import access, alliances, ssrf
from services.connector import repository as repo
from services.connector.models import Backend, Grant, OperationRow
from services.connector.service import Connector

SECRET_FIELDS = frozenset({"api_key", "client_secret", "client_key_pem"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def backend_reply(b: Backend) -> c.BackendReply:
    return c.BackendReply(
        partner=b.partner,
        name=b.name,
        base_url=b.base_url,
        auth_kind=b.auth_kind,
        credential_version=b.credential_version,
        has_server_ca=bool(b.server_ca_pem),
        description=b.description,
        created_at=b.created_at,
    )


def operation_reply(
    op: OperationRow, granted: bool, backend: str | None = None, ally: str | None = None
) -> c.OperationReply:
    """``ally``: the owner's ecosystem's name when it is an allied one."""
    return c.OperationReply(
        id=op.id,
        partner=op.partner,
        backend=backend,
        name=op.name,
        method=op.method,
        path=op.path,
        input_schema=op.input_schema,
        output_schema=op.output_schema,
        visibility=op.visibility,
        description=op.description,
        granted=granted,
        ecosystem=op.eco if ally is not None else None,
        ecosystem_name=ally,
    )


def grant_reply(g: Grant, active: bool | None = None) -> c.GrantReply:
    """``active`` None: the grant applies unless revoked (one within its ecosystem)."""
    return c.GrantReply(
        id=g.id,
        operation=g.resource,
        grantee=g.grantee,
        grantee_eco=g.grantee_eco,
        rate_limit_per_minute=g.rate_limit_per_minute,
        response_fields=g.response_fields,
        created_at=g.created_at,
        revoked_at=g.revoked_at,
        active=g.revoked_at is None if active is None else active,
    )


async def check_egress(cx: Connector, s: AsyncSession, eco: str, url: str) -> None:
    allowed = cx.invoker.set_allowed(eco, await repo.allowlist(s, eco))
    try:
        await ssrf.check_url(url, allowed)
    except ssrf.Unresolvable:
        pass  # a name without an address yet: every call checks it again
    except ssrf.EgressRefused as exc:
        raise bad_request(f"the back-end address is refused: {exc}") from None


async def _seal_auth(
    cx: Connector, s: AsyncSession, eco: str, auth: c.AuthConfig, old_secret: str | None
) -> tuple[dict[str, Any], str | None]:
    data = auth.model_dump()
    secret = {k: v for k, v in data.items() if k in SECRET_FIELDS}
    public = {k: v for k, v in data.items() if k not in SECRET_FIELDS}
    if isinstance(auth, c.AuthOAuth2):
        await check_egress(cx, s, eco, auth.token_url)
    if old_secret:
        await repo.delete_secret(s, old_secret)
    if not secret:
        return public, None
    secret_id = uuid.uuid4().hex
    await repo.put_secret(s, secret_id, cx.vault.seal(secret_id, json.dumps(secret)))
    return public, secret_id


async def register_backend(
    cx: Connector, claims: Claims, req: c.RegisterBackendRequest
) -> c.BackendReply:
    if isinstance(req.auth, c.AuthMtls) and not req.base_url.startswith("https://"):
        raise bad_request("mTLS back-ends must use https")
    async with cx.db.transaction() as s:
        if await repo.get_backend(s, req.eco, req.partner, req.name):
            raise conflict("a back-end with this name exists")
        await check_egress(cx, s, req.eco, req.base_url)
        public, secret_id = await _seal_auth(cx, s, req.eco, req.auth, None)
        row = Backend(
            id=uuid.uuid4().hex,
            eco=req.eco,
            partner=req.partner,
            name=req.name,
            base_url=req.base_url,
            auth_kind=req.auth.kind,
            auth_public=public,
            secret_id=secret_id,
            credential_version=1,
            server_ca_pem=req.server_ca_pem,
            description=req.description,
            created_at=repo.now(),
        )
        await repo.add(s, row)
        return backend_reply(row)


async def list_backends(cx: Connector, claims: Claims, req: c.ListBackendsRequest) -> c.BackendList:
    async with cx.db.transaction() as s:
        rows = await repo.list_backends(s, req.eco, req.partner)
        return c.BackendList(items=[backend_reply(b) for b in rows])


async def rotate_credentials(
    cx: Connector, claims: Claims, req: c.RotateCredentialsRequest
) -> c.BackendReply:
    async with cx.db.transaction() as s:
        row = await repo.get_backend(s, req.eco, req.partner, req.backend)
        if row is None:
            raise not_found("back-end")
        if isinstance(req.auth, c.AuthMtls) and not row.base_url.startswith("https://"):
            raise bad_request("mTLS back-ends must use https")
        row.auth_public, row.secret_id = await _seal_auth(cx, s, req.eco, req.auth, row.secret_id)
        row.auth_kind = req.auth.kind
        row.credential_version += 1
        await s.flush()
        return backend_reply(row)


async def update_backend(
    cx: Connector, claims: Claims, req: c.UpdateBackendRequest
) -> c.BackendReply:
    async with cx.db.transaction() as s:
        row = await repo.get_backend(s, req.eco, req.partner, req.backend)
        if row is None:
            raise not_found("back-end")
        if req.base_url is not None and req.base_url != row.base_url:
            if row.auth_kind == "mtls" and not req.base_url.startswith("https://"):
                raise bad_request("mTLS back-ends must use https")
            await check_egress(cx, s, req.eco, req.base_url)
            row.base_url = req.base_url
            # A new address starts with a closed circuit here (other replicas' circuits try
            # again once their cool-down ends).
            cx.invoker.breakers.success(row.id)
        if req.description is not None:
            row.description = req.description
        await s.flush()
        return backend_reply(row)


def _check_schema(schema: dict[str, Any], label: str) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise bad_request(f"{label} is not a valid JSON Schema: {exc.message}") from None
    root = DRAFT202012.create_resource(schema)
    ref = _unresolvable_ref(schema, Registry().resolver_with_root(root))
    if ref is not None:  # remote references are never fetched: a schema is self-contained
        raise bad_request(f"{label} refers to {ref!r}, which is not in the schema")


class _Resolver(Protocol):
    """What of ``referencing``'s resolver the check uses (its class is not exported)."""

    def lookup(self, ref: str) -> object: ...

    def in_subresource(self, subresource: Resource[Any]) -> _Resolver: ...


def _unresolvable_ref(node: Any, resolver: _Resolver) -> str | None:
    """The first ``$ref`` in ``node`` that does not resolve (nested ``$id``s move the base)."""
    if isinstance(node, list):
        return next((r for n in node if (r := _unresolvable_ref(n, resolver))), None)
    if not isinstance(node, dict):
        return None
    if isinstance(node.get("$id"), str):
        resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
    ref = node.get("$ref")
    if isinstance(ref, str):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return ref
    return next((r for n in node.values() if (r := _unresolvable_ref(n, resolver))), None)


async def declare_operation(
    cx: Connector, claims: Claims, req: c.DeclareOperationRequest
) -> c.OperationReply:
    _check_schema(req.input_schema, "input_schema")
    _check_schema(req.output_schema, "output_schema")
    if "{" in _PLACEHOLDER.sub("", req.path) or "}" in _PLACEHOLDER.sub("", req.path):
        raise bad_request("path placeholders look like {name}")
    async with cx.db.transaction() as s:
        backend = await repo.get_backend(s, req.eco, req.partner, req.backend)
        if backend is None:
            raise not_found("back-end")
        op_id = f"{req.partner}.{req.name}"
        if await repo.get_operation(s, req.eco, op_id):
            raise conflict("an operation with this name exists")
        row = OperationRow(
            eco=req.eco,
            id=op_id,
            partner=req.partner,
            backend_id=backend.id,
            name=req.name,
            method=req.method,
            path=req.path,
            input_schema=req.input_schema,
            output_schema=req.output_schema,
            visibility=req.visibility,
            description=req.description,
            timeout_s=req.timeout_s,
            created_at=repo.now(),
        )
        await repo.add(s, row)
        return operation_reply(row, granted=True, backend=backend.name)


async def catalogue(cx: Connector, claims: Claims, req: c.CatalogueRequest) -> c.CatalogueReply:
    eco = req.eco
    alliances.own_routes_only(claims, "the catalogue")
    async with cx.db.transaction() as s:
        ops = await repo.list_operations(s, eco, textsearch.words(req.q))
        granted = {
            g.resource for g in await repo.active_grants(s, eco, "operation", claims.partner)
        }
        items = []
        for op in ops:
            mine = op.partner == claims.partner
            if (
                mine
                or access.is_operator(claims)
                or op.visibility == "ecosystem"
                or (op.id in granted)
            ):
                backend = await _backend_name(s, claims, op)
                items.append(operation_reply(op, mine or op.id in granted, backend))
        items += await _allied(s, claims, eco, req.q)
        return c.CatalogueReply(items=items)


async def _allied(s: AsyncSession, claims: Claims, eco: str, q: str) -> list[c.OperationReply]:
    """Operations of allied ecosystems granted to the caller's partner (every partner of
    ``eco`` for its operators), while their alliance is active and its terms let the
    owner grant across."""
    everyone = access.is_operator(claims)
    if claims.partner is None and not everyone:
        return []
    grantee = None if everyone else claims.partner
    found = await repo.granted_across(s, eco, grantee, textsearch.words(q))
    if not found:
        return []
    states = await alliances.active_across(s, [g for g, _ in found])
    names = {a.eco: a.name for a in await alliances.store.allies(s, eco)}
    items: dict[tuple[str, str], c.OperationReply] = {}
    for g, op in found:
        key, mine = (op.eco, op.id), g.grantee == claims.partner
        if states[g.id] and (key not in items or mine):
            items[key] = operation_reply(op, mine, None, names[op.eco])
    return list(items.values())


async def _backend_name(s: AsyncSession, claims: Claims, op: OperationRow) -> str | None:
    if not access.administers(claims, op.partner) and claims.partner != op.partner:
        return None
    backend = await repo.get_backend_by_id(s, op.backend_id)
    return backend.name if backend else None


async def load_visible(
    s: AsyncSession, claims: Claims, eco: str, op_id: str
) -> tuple[OperationRow, list[Grant]]:
    op = await repo.get_operation(s, eco, op_id)
    if op is None:
        raise not_found("operation")
    grants = list(await repo.list_grants(s, eco, "operation", op_id))
    if not access.may_see(claims, op, grants):
        raise not_found("operation")
    return op, grants


async def get_operation(
    cx: Connector, claims: Claims, req: c.GetOperationRequest
) -> c.OperationReply:
    async with cx.db.transaction() as s:
        op, grants = await load_visible(s, claims, req.eco, req.operation)
        partner, home = alliances.viewer(claims)
        granted = (home is None and op.partner == partner) or any(
            access.grant_applies(g, partner, home) for g in grants
        )
        return operation_reply(op, granted, await _backend_name(s, claims, op))


async def create_grant(cx: Connector, claims: Claims, req: c.CreateGrantRequest) -> c.GrantReply:
    alliances.own_routes_only(claims, "grants")
    other = req.grantee_eco if req.grantee_eco != req.eco else None
    async with cx.db.transaction() as s:
        op, grants = await load_visible(s, claims, req.eco, req.operation)
        access.require_owner_admin(claims, op, grants)
        if other is not None:
            if req.grantee is None:
                raise bad_request("a grant across an alliance names one partner (grantee)")
            await alliances.grant_allowed(s, req.eco, op.partner, other)
        elif req.grantee == op.partner:
            raise bad_request("the owner needs no grant")
        row = Grant(
            id=uuid.uuid4().hex,
            eco=req.eco,
            kind="operation",
            resource=op.id,
            owner_partner=op.partner,
            grantee=req.grantee,
            grantee_eco=other,
            rate_limit_per_minute=req.rate_limit_per_minute,
            response_fields=req.response_fields,
            created_at=repo.now(),
            revoked_at=None,
        )
        await repo.add(s, row)
        await _grant_event(cx, s, row)
        return grant_reply(row)


async def list_grants(cx: Connector, claims: Claims, req: c.ListGrantsRequest) -> c.GrantList:
    alliances.own_routes_only(claims, "grants")
    async with cx.db.transaction() as s:
        op, grants = await load_visible(s, claims, req.eco, req.operation)
        access.require_owner_admin(claims, op, grants)
        across = await alliances.active_across(s, list(grants))
        return c.GrantList(items=[grant_reply(g, across.get(g.id)) for g in grants])


async def revoke_grant(cx: Connector, claims: Claims, req: c.RevokeGrantRequest) -> c.GrantReply:
    alliances.own_routes_only(claims, "grants")
    async with cx.db.transaction() as s:
        op, grants = await load_visible(s, claims, req.eco, req.operation)
        access.require_owner_admin(claims, op, grants)
        row = next((g for g in grants if g.id == req.grant), None)
        if row is None:
            raise not_found("grant")
        if row.revoked_at is None:
            await repo.revoke_grant(s, row)
            await _grant_event(cx, s, row)
        return grant_reply(row)


async def _grant_event(cx: Connector, s: AsyncSession, g: Grant) -> None:
    data = c.GrantChangedData(
        grant=g.id,
        operation=g.resource,
        grantee=g.grantee,
        grantee_eco=g.grantee_eco,
        revoked=g.revoked_at is not None,
    )
    event = c.GrantChanged(ecosystem=g.eco, partner=g.owner_partner, subject=g.resource, data=data)
    await cx.rt.outbox.add(s, event)


async def get_allowlist(cx: Connector, claims: Claims, req: c.AllowlistRequest) -> c.AllowlistReply:
    eco = req.eco
    async with cx.db.transaction() as s:
        return c.AllowlistReply(entries=await repo.allowlist(s, eco))


async def set_allowlist(
    cx: Connector, claims: Claims, req: c.SetAllowlistRequest
) -> c.AllowlistReply:
    try:
        entries = [str(n) for n in ssrf.parse_networks(req.entries)]
    except ValueError as exc:
        raise bad_request(f"not a network: {exc}") from None
    if any(
        ip in n.net
        for n in ssrf.parse_networks(entries)
        for ip in ssrf.METADATA
        if ip.version == n.version
    ):
        raise bad_request("cloud metadata addresses cannot be allow-listed")
    async with cx.db.transaction() as s:
        await repo.set_allowlist(s, req.eco, entries)
    cx.invoker.set_allowed(req.eco, entries)
    return c.AllowlistReply(entries=sorted(set(entries)))
