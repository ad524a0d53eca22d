"""The exception every layer raises for an expected failure, and its wire forms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from contracts.errors import STATUS, TITLES, ErrorBody, ErrorCode


class MeshError(Exception):
    """An expected failure with a code from ``contracts.errors``.

    Services raise it; the service base turns it into a NATS micro error reply;
    the gateway turns that into RFC 9457 problem+json. Its detail is shown to
    callers, so it must never contain secrets or internals.
    """

    def __init__(
        self, code: ErrorCode, detail: str = "", errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.errors = errors
        # Header fields its HTTP answer carries (a challenge, a rate limit's reset).
        self.headers: dict[str, str] = {}

    @property
    def status(self) -> int:
        return STATUS[self.code]

    @property
    def title(self) -> str:
        return TITLES[self.code]

    def body(self) -> ErrorBody:
        return ErrorBody(code=self.code, detail=self.detail, errors=self.errors)

    @classmethod
    def from_body(cls, body: ErrorBody) -> MeshError:
        return cls(body.code, body.detail, body.errors)

    @classmethod
    def from_validation(cls, exc: ValidationError) -> MeshError:
        return cls.invalid(exc.errors(include_url=False, include_input=False))

    @classmethod
    def invalid(cls, errors: Iterable[Mapping[str, Any]]) -> MeshError:
        """A request off its schema: each error's location, message and type (no input)."""
        listed = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        return cls(ErrorCode.VALIDATION_FAILED, "the request does not match its schema", listed)


def not_found(what: str) -> MeshError:
    return MeshError(ErrorCode.NOT_FOUND, f"{what} not found")


def forbidden(why: str) -> MeshError:
    return MeshError(ErrorCode.FORBIDDEN, why)


def conflict(why: str) -> MeshError:
    return MeshError(ErrorCode.CONFLICT, why)


def bad_request(why: str) -> MeshError:
    return MeshError(ErrorCode.BAD_REQUEST, why)
