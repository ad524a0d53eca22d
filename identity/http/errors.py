"""How the provider answers what went wrong, outside the OAuth/OIDC error formats.

Expected failures (:class:`MeshError`, request validation, Starlette's HTTP errors such
as an unknown route or a body that is not JSON) and anything unexpected become an RFC
9457 problem (``application/problem+json``), or, for a browser asking for a page
(``Accept: text/html``), an HTML page. An unexpected error is logged with a request id
(the caller's ``X-Request-Id`` when sane, else a new one), and the caller sees only that
id — never uvicorn's plain-text "Internal Server Error" or a trace. The protocol
endpoints keep the errors their RFCs fix (``invalid_request``, ``invalid_dpop_proof``,
``WWW-Authenticate: Bearer error="invalid_token"``): those are responses, not exceptions.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from contracts.errors import PROBLEM_TYPE_BASE, STATUS, ErrorCode
from mesh import context
from mesh.errors import MeshError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# The pages' own policy (identity.http.pages.SECURITY_HEADERS), without the CSRF cookie.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · partnermesh</title>
  <link rel="stylesheet" href="/static/identity.css">
</head>
<body>
  <main class="card" id="main">
    <h1>{title}</h1>
    <p>{detail}</p>
  </main>
</body>
</html>
"""


def request_id(request: Request) -> str:
    """The request's id: the caller's ``X-Request-Id`` when sane, else a new one."""
    rid = context.request_id.get() or getattr(request.state, "request_id", None)
    if not rid:
        sent = request.headers.get("x-request-id", "")
        rid = context.safe_request_id(sent)
        request.state.request_id = rid  # the log and the response name the same id
    return str(rid)


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML), rather than an API client."""
    return "text/html" in request.headers.get("accept", "")


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    doc: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error as a problem document (``doc``, when one is made already), or as a page
    for a browser."""
    rid = request_id(request)
    hdrs = {**(headers or {}), "X-Request-Id": rid}
    if wants_page(request):
        title = html.escape(_title(status))
        page = _PAGE.format(title=title, detail=html.escape(detail))
        return HTMLResponse(page, status, {**_PAGE_HEADERS, **hdrs})
    if doc is None:
        doc = {
            "type": PROBLEM_TYPE_BASE + code,
            "title": _title(status),
            "status": status,
            "code": code,
            "detail": detail,
            "instance": request.url.path,
        }
    return JSONResponse({**doc, "request_id": rid}, status, hdrs, media_type=PROBLEM_JSON)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code_of(status: int) -> str:
    """The contracts' code of ``status``; else its phrase (405: ``method_not_allowed``)."""
    for code, known in STATUS.items():
        if known == status:
            return code.value
    return _title(status).lower().replace(" ", "_").replace("-", "_")


def install(app: FastAPI) -> None:
    """Register the provider's error responses on ``app``."""

    @app.exception_handler(MeshError)
    async def mesh_error(request: Request, exc: MeshError) -> Response:
        doc = exc.body().problem(request.url.path)
        return problem(request, exc.status, exc.code.value, exc.detail, doc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        err = MeshError(
            ErrorCode.VALIDATION_FAILED, "the request does not match its schema", errors
        )
        return await mesh_error(request, err)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own refusals: no route (404), a method the route lacks (405), a
        # body FastAPI could not parse (400, a depth bomb included).
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        return problem(
            request, exc.status_code, _code_of(exc.status_code), detail, None, exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's outermost middleware calls this, then re-raises for the server's log.
        rid = request_id(request)
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={"request_id": rid, "path": request.url.path, "method": request.method},
        )
        return problem(request, 500, ErrorCode.INTERNAL.value, f"internal error (request id {rid})")
