"""The portal's only way to data: the gateway, called with the signed-in person's own token.

Operations are looked up by name in the contracts registry, so the portal follows the
routes the services declare instead of keeping its own copy of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from contracts.policy import Operation
from contracts.registry import OPERATIONS
from mesh import safejson

log = logging.getLogger(__name__)
BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}


class ApiError(Exception):
    """A call through the gateway failed; ``status`` and ``detail`` are safe to show."""

    def __init__(self, status: int, code: str, detail: str, errors: Any = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors  # a validation failure's per-field errors, as the service said


def available(name: str) -> bool:
    return name in BY_NAME


@dataclass(frozen=True)
class Call:
    """One HTTP call of an operation, ready to send directly or inside a mashup."""

    name: str
    method: str
    path: str
    query: dict[str, Any]
    body: dict[str, Any] | None


def build(name: str, eco: str, params: dict[str, Any]) -> Call:
    op = BY_NAME.get(name)
    if op is None:
        raise ApiError(503, "unavailable", f"{name} is not available in this deployment")
    values = {"eco": eco, **{k: v for k, v in params.items() if v is not None}}
    path = op.path
    for key in list(values):
        token = "{" + key + "}"
        if token in path:
            path = path.replace(token, quote(str(values.pop(key)), safe=""))
    if "{" in path:
        raise ApiError(400, "bad_request", f"{name} needs more parameters than were given")
    if op.method == "GET":
        return Call(name, op.method, path, values, None)
    return Call(name, op.method, path, {}, values)


# What a person reads for the validation errors people make most (pydantic error types).
PLAIN = {
    "missing": "is required",
    "string_pattern_mismatch": "is not in the expected form",
    "string_too_short": "is empty or too short",
    "string_too_long": "is too long",
    "too_long": "has too many entries",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "greater_than_equal": "is too small",
    "less_than_equal": "is too large",
    "literal_error": "is not one of the choices",
    "enum": "is not one of the choices",
    "extra_forbidden": "is not expected here",
    "json_schema": "does not fit the operation's input",
}
_PLUMBING = {"body", "query", "path", "input"}


def plain_errors(errors: Any) -> str | None:
    """Validation errors as a sentence a person can act on ("links › url is not in the
    expected form"), or None when there are none to tell."""
    if not isinstance(errors, list) or not errors:
        return None
    said: list[str] = []
    for error in errors[:3]:
        if not isinstance(error, dict):
            continue
        loc = [str(p) for p in error.get("loc") or [] if not isinstance(p, int)]
        names = [p.replace("_", " ") for p in loc if p not in _PLUMBING and p != "eco"]
        field = " › ".join(names[-2:]) or "the form"
        why = PLAIN.get(str(error.get("type")), str(error.get("msg") or "is not valid"))
        said.append(f"{field} {why[:1].lower()}{why[1:]}")
    return ("Please check: " + "; ".join(said) + ".") if said else None


def _problem(resp: httpx.Response) -> ApiError:
    try:
        doc = safejson.loads(resp.content)
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    detail = str(doc.get("detail") or doc.get("title") or resp.reason_phrase)
    if resp.status_code in (400, 422):
        detail = plain_errors(doc.get("errors")) or detail
    return ApiError(resp.status_code, str(doc.get("code") or "error"), detail, doc.get("errors"))


def reply_json(resp: httpx.Response) -> Any:
    """A successful reply's JSON (None when empty); a reply that is not JSON (or nests
    beyond the kit's bound) is the peer's failure: 502, not a crash of the page."""
    if not resp.content:
        return None
    try:
        return safejson.loads(resp.content)
    except ValueError:
        raise ApiError(502, "bad_gateway", "the server sent a reply that is not JSON") from None


def query_pairs(query: dict[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


class Gateway:
    def __init__(self, http: httpx.AsyncClient, eco: str) -> None:
        self.http = http
        self.eco = eco

    async def send(self, token: str, call: Call) -> Any:
        try:
            resp = await self.http.request(
                call.method,
                call.path,
                params=query_pairs(call.query),
                json=call.body,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TimeoutException:
            raise ApiError(504, "timeout", "the gateway did not answer in time") from None
        except httpx.HTTPError:
            raise ApiError(503, "unavailable", "the gateway is not reachable") from None
        if resp.status_code >= 400:
            raise _problem(resp)
        return reply_json(resp)

    async def call(self, token: str, op: str, /, **params: Any) -> Any:
        return await self.send(token, build(op, self.eco, params))

    async def mashup(self, token: str, calls: dict[str, Call]) -> dict[str, Any]:
        """Send every call in one round trip; each id maps to its body or an :class:`ApiError`."""
        if not calls:
            return {}
        items = [
            {
                "id": key,
                "method": c.method,
                "path": c.path,
                "query": dict(query_pairs(c.query)),
                **({"body": c.body} if c.body is not None else {}),
            }
            for key, c in calls.items()
        ]
        path = f"/v1/ecosystems/{quote(self.eco, safe='')}/mashup"
        try:
            resp = await self.http.post(
                path, json={"requests": items}, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError:
            err = ApiError(503, "unavailable", "the gateway is not reachable")
            return dict.fromkeys(calls, err)
        if resp.status_code >= 400:
            err = _problem(resp)
            return dict.fromkeys(calls, err)
        return parse_mashup(reply_json(resp), calls)


def parse_mashup(doc: Any, calls: dict[str, Call]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    items = doc.get("results") if isinstance(doc, dict) else None
    for item in items if isinstance(items, list) else []:
        key = str(item.get("id"))
        status = int(item.get("status", 500))
        body = item.get("body")
        if status >= 400:
            body = body if isinstance(body, dict) else {}
            detail = str(body.get("detail") or body.get("title") or "failed")
            results[key] = ApiError(status, str(body.get("code") or "error"), detail)
        else:
            results[key] = body
    for key in calls:
        results.setdefault(key, ApiError(502, "bad_gateway", "no answer for this source"))
    return results
