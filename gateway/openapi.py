"""OpenAPI 3.1 for the whole ecosystem API, generated from the contract Operations.

Each operation documents its parameters (path, and query for GET/DELETE), its JSON
body (the request model without the path fields), its reply and every problem
status the edge can answer, the bearer (or DPoP) security requirement naming its scope, and
its policy as the ``x-partnermesh-policy`` extension.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts.errors import PROBLEM_TYPE_BASE, ErrorCode
from contracts.policy import Operation
from gateway import mashup
from gateway.routes import BoundRoute, RouteTable
from gateway.settings import GatewaySettings
from mesh.problems import PROBLEM_JSON, Problem

REF = "#/components/schemas/{model}"
# The statuses the edge answers that have no code in contracts.errors: named by their
# reason phrase (method_not_allowed, not_acceptable, unsupported_media_type).
EDGE_ONLY_CODES = [c for s in (405, 406, 415) if (c := Problem.for_status(s, "").code)]

_ERRORS: dict[str, tuple[int, str]] = {
    "BadRequest": (400, "The request is malformed (e.g. the body is not JSON)"),
    "Unauthenticated": (401, "No token, or an invalid, expired or untrusted one"),
    "Forbidden": (403, "The token's scope, roles, ecosystem or partner do not allow this call"),
    "NotFound": (404, "Not found, or not visible to this caller"),
    "MethodNotAllowed": (405, "The path is routed, but not for this method: see Allow"),
    "Conflict": (409, "The request conflicts with the current state"),
    "PreconditionFailed": (412, "The expected_version given is no longer the current one"),
    "PayloadTooLarge": (413, "The request body is larger than the gateway accepts"),
    "UnsupportedMediaType": (415, "The request body is not JSON (application/json or +json)"),
    "ValidationFailed": (422, "The request does not match its schema"),
    "RateLimited": (429, "Too many requests: see Retry-After and RateLimit"),
    "Internal": (500, "An unexpected error; the body names the request id"),
    "BadGateway": (502, "The partner back-end behind the operation failed or was refused"),
    "Unavailable": (
        503,
        "No service instance serves the operation right now (code unavailable), or the "
        "gateway or the owning service is at capacity (code overloaded: see Retry-After)",
    ),
    "Timeout": (
        504,
        "The request was not answered within the gateway's deadline, or the owning service "
        "did not answer in time",
    ),
}
# Which operations each problem applies to (the rest apply to every operation). A 405 is
# never the answer to a documented operation: its response is in components, for reference.
_BODY_ONLY = {"PayloadTooLarge", "UnsupportedMediaType"}
_NOT_AN_OPERATION = {"MethodNotAllowed"}


def _problems_of(op: Operation | None, takes_body: bool) -> list[str]:
    """The problem responses an operation can answer (``None``: the mashup endpoint)."""
    names = []
    for name in _ERRORS:
        if name in _NOT_AN_OPERATION or (name in _BODY_ONLY and not takes_body):
            continue
        if name == "PreconditionFailed" and (
            op is None or "expected_version" not in op.request.model_fields
        ):
            continue
        if name == "BadGateway" and (op is None or op.service != "connector"):
            continue
        names.append(name)
    return names


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri", "examples": [PROBLEM_TYPE_BASE + "forbidden"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "enum": [c.value for c in ErrorCode] + EDGE_ONLY_CODES},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def _schemas(models: list[type[BaseModel]]) -> tuple[dict[Any, Any], dict[str, Any]]:
    keyed = [(m, "validation") for m in dict.fromkeys(models)]
    keyed += [(m, "serialization") for m in dict.fromkeys(models)]
    refs, top = models_json_schema(keyed, ref_template=REF)  # type: ignore[arg-type]
    return refs, top.get("$defs", {})


def _object_schema(defs: dict[str, dict[str, Any]], ref: dict[str, Any]) -> dict[str, Any]:
    name = ref["$ref"].rsplit("/", 1)[-1]
    return defs[name]


def _parameters(bound: BoundRoute, schema: dict[str, Any]) -> list[dict[str, Any]]:
    props, required = schema.get("properties", {}), set(schema.get("required", []))
    params = [
        {"name": n, "in": "path", "required": True, "schema": props.get(n, {"type": "string"})}
        for n in bound.path_params
    ]
    if not bound.takes_body:
        params += [
            {"name": n, "in": "query", "required": n in required, "schema": s}
            for n, s in props.items()
            if n not in bound.path_params
        ]
    return params


def _body(bound: BoundRoute, schema: dict[str, Any]) -> dict[str, Any] | None:
    if not bound.takes_body:
        return None
    body = copy.deepcopy(schema)
    for name in bound.path_params:
        body.get("properties", {}).pop(name, None)
    body["required"] = [r for r in body.get("required", []) if r not in bound.path_params]
    if not body["required"]:
        body.pop("required")
    return {
        "required": bool(body.get("required")),
        "content": {"application/json": {"schema": body}},
    }


def _responses(
    status: int, reply: dict[str, Any] | None, op: Operation | None, takes_body: bool
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "Success"}
    if reply is not None and status != 204:
        ok["content"] = {"application/json": {"schema": reply}}
    out: dict[str, Any] = {str(status): ok}
    for name in _problems_of(op, takes_body):
        out[str(_ERRORS[name][0])] = {"$ref": f"#/components/responses/{name}"}
    return out


def _operation(bound: BoundRoute, refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    op: Operation = bound.op
    req_schema = _object_schema(defs, refs[(op.request, "validation")])
    doc: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": list(op.tags) or [op.service],
        "parameters": _parameters(bound, req_schema),
        "responses": _responses(op.status, refs[(op.reply, "serialization")], op, bound.takes_body),
        "security": [] if op.policy.public else _security(op),
        "x-partnermesh-policy": op.policy.describe(),
        "x-partnermesh-subject": op.subject,
    }
    body = _body(bound, req_schema)
    if body:
        doc["requestBody"] = body
    return doc


def _security(op: Operation) -> list[dict[str, list[str]]]:
    """Bearer or DPoP (RFC 9449), each with the operation's scope."""
    scopes = [op.policy.scope.value] if op.policy.scope else []
    return [{"bearer": scopes}, {"dpop": list(scopes)}]


def _mashup_path(refs: dict[Any, Any]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": "gateway.mashup",
            "summary": "Run several operations in one round trip; each is authorised on its own",
            "tags": ["gateway"],
            "parameters": [
                {"name": "eco", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": refs[(mashup.MashupRequest, "validation")]}
                },
            },
            "responses": _responses(200, refs[(mashup.MashupReply, "serialization")], None, True),
            "security": [{"bearer": []}, {"dpop": []}],
            "x-partnermesh-policy": {
                "public": False,
                "scope": None,
                "ecosystem_bound_to": "eco",
                "sub_requests": "each is authorised by its own operation's policy",
            },
        }
    }


_RATE_HEADERS = {
    "RateLimit-Policy": 'The quotas that apply, e.g. "client";q=200;w=2',
    "RateLimit": 'What is left of the tightest quota, e.g. "client";r=0;t=1',
    "Retry-After": "Seconds to wait before trying again",
}


def _problem_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (_, text) in _ERRORS.items():
        out[name] = {
            "description": text,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    out["RateLimited"]["headers"] = _headers(_RATE_HEADERS)
    out["Unavailable"]["headers"] = _headers(
        {"Retry-After": "Seconds to wait before trying again (when the code is overloaded)"}
    )
    out["MethodNotAllowed"]["headers"] = _headers(
        {"Allow": "The methods the path accepts, e.g. GET, HEAD, POST"}
    )
    out["Unauthenticated"]["headers"] = _headers(
        {"WWW-Authenticate": "A DPoP challenge (RFC 9449): scheme, error, description"}
    )
    return out


def _headers(described: dict[str, str]) -> dict[str, Any]:
    return {h: {"description": d, "schema": {"type": "string"}} for h, d in described.items()}


def build_openapi(routes: RouteTable, settings: GatewaySettings) -> dict[str, Any]:
    models: list[type[BaseModel]] = [mashup.MashupRequest, mashup.MashupReply]
    for b in routes.routes:
        models += [b.op.request, b.op.reply]
    refs, defs = _schemas(models)
    paths: dict[str, dict[str, Any]] = {}
    for bound in routes.routes:
        paths.setdefault(bound.op.path, {})[bound.op.method.lower()] = _operation(bound, refs, defs)
    paths[mashup.PATH] = _mashup_path(refs)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "partnermesh ecosystem API",
            "version": "v1",
            "description": "Every operation of the mesh, behind one gateway. Tokens are RFC 9068 "
            "access tokens of the ecosystem's issuer; each operation names its scope and policy.",
        },
        "paths": paths,
        "components": {
            "schemas": {**defs, "Problem": PROBLEM_SCHEMA},
            "responses": _problem_responses(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token (typ at+jwt) of the ecosystem's issuer "
                    "<identity>/eco/<eco>; its scopes are listed per operation.",
                },
                "dpop": {
                    "type": "http",
                    "scheme": "DPoP",
                    "description": "A DPoP-bound access token (RFC 9449, cnf.jkt) sent as "
                    "'Authorization: DPoP <token>' with a 'DPoP' proof header signed by its key "
                    "(htm, htu = the gateway's public URL, iat, jti, ath). Bound tokens sent "
                    "as Bearer are refused.",
                },
            },
        },
    }
    if settings.public_url:
        doc["servers"] = [{"url": settings.public_url.rstrip("/")}]
    return doc


def openapi_document() -> dict[str, Any]:
    """The committed OpenAPI export: every registry operation, no deployment-specific server."""
    from contracts.registry import OPERATIONS

    return build_openapi(RouteTable(OPERATIONS), GatewaySettings(public_url=""))
