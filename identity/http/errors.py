"""How the provider answers what went wrong, outside the OAuth/OIDC error formats.

Expected failures (:class:`MeshError`, request validation, Starlette's HTTP errors such
as an unknown route or a body that is not JSON) and anything unexpected become an RFC
9457 problem (``application/problem+json``, :mod:`mesh.problems`), or, for a browser
asking for a page (``Accept: text/html``), an HTML page. An unexpected error is logged
with a request id (the caller's ``X-Request-Id`` when sane, else a new one), and the
caller sees only that id — never uvicorn's plain-text "Internal Server Error" or a trace.
The protocol endpoints keep the errors their RFCs fix (``invalid_request``,
``invalid_dpop_proof``, ``WWW-Authenticate: Bearer error="invalid_token"``): those are
responses, not exceptions.
"""

from __future__ import annotations

import html

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from mesh import problems
from mesh.problems import Problem, reason_phrase

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


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML), rather than an API client."""
    return "text/html" in request.headers.get("accept", "")


def render(request: Request, problem: Problem, rid: str) -> Response:
    """``problem`` as problem+json, or as a page for a browser."""
    if not wants_page(request):
        return problem.response(rid)
    title = html.escape(reason_phrase(problem.status))
    page = _PAGE.format(title=title, detail=html.escape(problem.detail))
    headers = {**_PAGE_HEADERS, **problem.headers, "X-Request-Id": rid}
    return HTMLResponse(page, problem.status, headers)


def install(app: FastAPI) -> None:
    """Register the provider's error responses on ``app``."""
    problems.install(app, render)
