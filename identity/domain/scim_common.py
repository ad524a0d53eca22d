"""What every SCIM resource shares (RFC 7643 §3, RFC 7644 §3.4.2, §3.12, §3.14): schema
URNs, errors, versions (ETags), list responses, attribute selection and paging."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.errors import ErrorCode
from identity.domain import scim_filter
from identity.store.scim_query import Filter, UnsupportedFilter
from mesh.errors import MeshError

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_RESULTS = 200
ALWAYS = frozenset({"id", "schemas", "meta"})


class ScimError(Exception):
    """A SCIM error response (RFC 7644 §3.12): an HTTP status and, for 400 and 409, a
    ``scimType`` (invalidFilter, invalidPath, invalidValue, invalidSyntax, noTarget,
    mutability, uniqueness, tooMany)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schemas": [ERROR],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            doc["scimType"] = self.scim_type
        return doc


def bad(scim_type: str, detail: str) -> ScimError:
    return ScimError(400, detail, scim_type)


def not_found(what: str) -> ScimError:
    return ScimError(404, f"{what} not found")


_MESH_STATUS = {
    ErrorCode.CONFLICT: (409, "uniqueness"),
    ErrorCode.VALIDATION_FAILED: (400, "invalidValue"),
    ErrorCode.BAD_REQUEST: (400, "invalidValue"),
    ErrorCode.NOT_FOUND: (404, None),
    ErrorCode.FORBIDDEN: (403, None),
    ErrorCode.UNAUTHENTICATED: (401, None),
    ErrorCode.PRECONDITION_FAILED: (412, None),
}


def from_mesh(exc: MeshError) -> ScimError:
    """A shared domain function's refusal, as SCIM says it."""
    status, scim_type = _MESH_STATUS.get(exc.code, (exc.status, None))
    return ScimError(status, exc.detail, scim_type)


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def version(doc: dict[str, Any]) -> str:
    """The weak ETag of a resource: a digest of what it says (meta aside), so any change,
    through SCIM or the admin API, gives a new one."""
    body = {k: v for k, v in doc.items() if k != "meta"}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return f'W/"{hashlib.sha256(raw).hexdigest()[:20]}"'


def check_version(current: str, if_match: str | None) -> None:
    """If-Match (RFC 7644 §3.14, RFC 7232 §3.1): 412 unless ``*`` or one of the tags."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    bare = current.removeprefix("W/")
    if not any(t.removeprefix("W/") == bare for t in tags):
        raise ScimError(412, "the resource changed since that version (If-Match)")


def parse_filter(text: str | None) -> Filter | None:
    if text is None or not text.strip():
        return None
    try:
        return scim_filter.parse(text)
    except scim_filter.FilterError as exc:
        raise bad("invalidFilter", str(exc)) from None


def unsupported(exc: UnsupportedFilter) -> ScimError:
    return bad("invalidFilter", str(exc))


@dataclass(frozen=True)
class Page:
    """startIndex (1-based) and count (RFC 7644 §3.4.2.4), bounded."""

    start: int = 1
    count: int = MAX_RESULTS

    @classmethod
    def of(cls, start: str | None, count: str | None) -> Page:
        try:
            first = int(start) if start not in (None, "") else 1
            size = int(count) if count not in (None, "") else MAX_RESULTS
        except ValueError:
            raise bad("invalidValue", "startIndex and count are integers") from None
        return cls(max(1, min(first, 10**9)), max(0, min(size, MAX_RESULTS)))

    @property
    def offset(self) -> int:
        return self.start - 1


def list_response(total: int, page: Page, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": page.start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def _names(text: str | None) -> set[str]:
    found = set()
    for part in (text or "").split(","):
        if part.strip():
            found.add(scim_filter.attribute(part.strip()).split(".", 1)[0])
    return found


def select_attributes(
    doc: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5), top-level attributes
    (a sub-attribute selects its parent); id, schemas and meta are always returned."""
    try:
        wanted, unwanted = _names(attributes), _names(excluded)
    except scim_filter.FilterError as exc:
        raise bad("invalidValue", str(exc)) from None
    out = {}
    for key, value in doc.items():
        low = key.lower()
        if low in ALWAYS or ((not wanted or low in wanted) and low not in unwanted):
            out[key] = value
    return out


def read_json(raw: bytes, max_bytes: int = 256 * 1024) -> dict[str, Any]:
    """A request body: a JSON object, bounded (invalidSyntax otherwise)."""
    if len(raw) > max_bytes:
        raise ScimError(413, "the request body is too large")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise bad("invalidSyntax", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad("invalidSyntax", "the body is not a JSON object")
    return body


def boolean(value: Any, what: str) -> bool:
    """A boolean, or the strings some directories send for one (Entra: ``"False"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad("invalidValue", f"{what} must be a boolean")


def text(value: Any, what: str, max_len: int = 200, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_len:
        raise bad("invalidValue", f"{what} must be a string of at most {max_len} characters")
    return value
