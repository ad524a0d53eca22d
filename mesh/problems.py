"""RFC 9457 problem details: the one shape an error takes over HTTP, in every process.

A :class:`Problem` is an error answer: its status, its document (``type``, ``title``,
``status``, ``detail``, ``instance`` and the extension members ``code``, ``errors``,
``request_id``, …) and the header fields it carries (``WWW-Authenticate``,
``Retry-After``, ``Allow``). It is made from a :class:`MeshError` (:meth:`Problem.of`) or
from a status that has no code of its own in ``contracts.errors`` (405, 406, 415:
:meth:`Problem.for_status`), and rendered as bytes (the gateway's plain ASGI, the
operations app) or as a Starlette response (:meth:`Problem.response`).

:func:`install` gives a Starlette or FastAPI app its error handlers: a ``MeshError``,
request validation, Starlette's own refusals (no route, a method the route lacks, a body
that is not JSON) and anything unexpected each become a problem; an unexpected error is
logged under the request id and the caller sees only that id, never a trace. A process
whose callers want another form (a page for a browser, the portal's ``{"error": …}``)
passes its own ``render``. Protocol endpoints whose RFCs fix their error bodies (OAuth's
``{"error": …, "error_description": …}``) answer those as responses, not exceptions, and
never reach these handlers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from contracts.errors import (
    OVERLOAD_RETRY_AFTER_S,
    PROBLEM_TYPE_BASE,
    STATUS,
    TITLES,
    ErrorCode,
)
from mesh import context
from mesh.errors import MeshError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
ABOUT_BLANK = "about:blank"


@dataclass(slots=True)  # not frozen: a frozen init costs more than the rest of a refusal
class Problem:
    """An error answer. ``code`` names its type (``PROBLEM_TYPE_BASE + code``) and is the
    ``code`` member; without one the type is ``about:blank`` (RFC 9457 4.2.1).
    ``members`` are further extension members (``errors``, ``reasons``); ``headers`` the
    header fields the answer carries."""

    status: int
    title: str
    code: str | None = None
    detail: str = ""
    instance: str | None = None
    members: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, exc: MeshError, instance: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Problem:
        """``exc`` as a problem, with ``headers`` and the error's own (a challenge); an
        ``overloaded`` refusal says when to come back (``Retry-After``)."""
        fields = {**(headers or {}), **exc.headers}
        if exc.code is ErrorCode.OVERLOADED:
            fields["Retry-After"] = str(OVERLOAD_RETRY_AFTER_S)
        members = {"errors": exc.errors} if exc.errors else {}
        return cls(exc.status, exc.title, exc.code.value, exc.detail, instance, members, fields)

    @classmethod
    def for_status(
        cls,
        status: int,
        detail: str,
        instance: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Problem:
        """A problem for ``status``: its code's when ``contracts.errors`` has one (404 is
        ``not_found``), else named by its reason phrase (405: ``method_not_allowed``)."""
        for code, known in STATUS.items():
            if known == status:
                return cls(status, TITLES[code], code.value, detail, instance, {}, headers or {})
        title = reason_phrase(status).capitalize()
        name = title.lower().replace(" ", "_").replace("-", "_")
        return cls(status, title, name, detail, instance, {}, headers or {})

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.code if self.code else ABOUT_BLANK

    def doc(self, request_id: str | None = None) -> dict[str, Any]:
        """The problem document; ``request_id`` names the request in the logs."""
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.code:
            doc["code"] = self.code
        if self.detail:
            doc["detail"] = self.detail
        if self.instance:
            doc["instance"] = self.instance
        doc.update(self.members)
        if request_id:
            doc["request_id"] = request_id
        return doc

    def json(self, request_id: str | None = None) -> bytes:
        """The document as compact JSON, in ASCII: a caller's text in it (a path, a field
        name with a lone surrogate) always encodes."""
        return json.dumps(self.doc(request_id), separators=(",", ":")).encode()

    def response(self, request_id: str | None = None) -> Response:
        """The problem as a Starlette response; ``X-Request-Id`` names ``request_id``."""
        headers = dict(self.headers)
        if request_id:
            headers["X-Request-Id"] = request_id
        return Response(self.json(request_id), self.status, headers, PROBLEM_JSON)


def reason_phrase(status: int) -> str:
    """The status's reason phrase (``Not Found``); ``Error`` for one HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def internal_error(
    where: str, exc: BaseException | None = None, rid: str | None = None, **extra: Any
) -> MeshError:
    """Log ``exc`` under the request id (``rid``, else the one being served); what the
    caller may see: that id, nothing else."""
    rid = rid or context.request_id.get() or "-"
    fields = {"where": where, "request_id": rid, **extra}
    log.error("unhandled error", exc_info=exc or True, extra=fields)
    return MeshError(ErrorCode.INTERNAL, f"internal error (request id {rid})")


def request_id(request: Request) -> str:
    """The request's id: the one being served, else the caller's ``X-Request-Id`` when
    sane, else a new one (kept on the request: the log and the answer name the same)."""
    rid = context.request_id.get() or getattr(request.state, "request_id", None)
    if not rid:
        rid = context.safe_request_id(request.headers.get("x-request-id", ""))
        request.state.request_id = rid
    return str(rid)


Render = Callable[[Request, Problem, str], Response]
"""How a process answers a problem: ``(request, problem, request id) -> response``."""


def problem_response(_request: Request, problem: Problem, rid: str) -> Response:
    """The default render: the problem as ``application/problem+json``."""
    return problem.response(rid)


def install(app: Starlette, render: Render = problem_response) -> None:
    """Answer every error on ``app`` as a problem, rendered by ``render``."""
    # FastAPI only where an app is one: the gateway imports this module without it.
    from fastapi.exceptions import RequestValidationError

    def answer(request: Request, problem: Problem) -> Response:
        return render(request, problem, request_id(request))

    async def mesh_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MeshError)
        return answer(request, Problem.of(exc, request.url.path))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return answer(request, Problem.of(MeshError.invalid(exc.errors()), request.url.path))

    async def http_error(request: Request, exc: Exception) -> Response:
        # Starlette's own refusals: no route (404), a method the route lacks (405), a
        # body that could not be parsed (400, a depth bomb included).
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else reason_phrase(status)
        problem = Problem.for_status(status, detail, request.url.path, exc.headers)
        return answer(request, problem)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's outermost middleware calls this, then re-raises for the server's log.
        path = request.url.path
        err = internal_error(path, exc, request_id(request), method=request.method)
        return answer(request, Problem.of(err, path))

    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
        MeshError: mesh_error,
        RequestValidationError: validation_error,
        HTTPException: http_error,
        Exception: unexpected,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
