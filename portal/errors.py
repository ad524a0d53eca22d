"""The portal's answer when a request fails outside its own error types: a page for a
browser, ``{"error": …}`` for the portal's JSON API (``/api/…``), never a trace.

The handlers are the shared ones (:func:`mesh.problems.install`): Starlette's refusals
(no such page, a method a page lacks), request validation and a ``MeshError`` render the
error page; an unexpected error is logged under a request id (the caller's
``X-Request-Id`` when sane, else a new one) and the caller sees only that id.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from contracts.errors import ErrorCode
from mesh import problems
from mesh.problems import Problem, reason_phrase
from portal.web import render

log = logging.getLogger(__name__)

_OUTERMOST_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_FALLBACK = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
    "<body><main><h1>{title}</h1><p>{message}</p></main></body></html>"
)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def page(
    request: Request,
    status: int,
    title: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``error.html`` (signed-out chrome: the session store may be what failed)."""
    if _wants_json(request):
        return JSONResponse({"error": message}, status, headers)
    try:
        response: Response = render(
            request, "error.html", None, status=status, title=title, message=message
        )
    except Exception:  # the page itself cannot be built: a bare one, still no trace
        log.exception("error page failed")
        body = _FALLBACK.format(title=html.escape(title), message=html.escape(message))
        response = HTMLResponse(body, status)
    response.headers.update(headers or {})
    return response


def answer(request: Request, problem: Problem, rid: str) -> Response:
    """``problem`` as the error page, or ``{"error": …}`` for the JSON API."""
    if problem.code == ErrorCode.INTERNAL:
        message = f"Something went wrong on our side (request id {rid})."
        # Answered outside the middleware that adds the security headers: add them here.
        headers = {**_OUTERMOST_HEADERS, "X-Request-Id": rid}
        return page(request, problem.status, "Something went wrong", message, headers)
    title = reason_phrase(problem.status)
    title = "Something went wrong" if title == "Error" else title
    return page(request, problem.status, title, problem.detail, problem.headers)


def install(app: FastAPI) -> None:
    problems.install(app, answer)
