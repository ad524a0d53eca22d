"""The API docs page (``/docs``): Swagger UI served by the gateway itself.

No CDN: the Swagger UI bundle and stylesheet come from the ``fastapi-offline`` wheel,
so the page works on an air-gapped network and its Content-Security-Policy allows
scripts and styles from the gateway only (``script-src 'self'``, no inline script:
the page starts Swagger UI from ``/docs/init.js``).
"""

from __future__ import annotations

from importlib import resources

from gateway.endpoints import Endpoint, guarded
from gateway.http import Incoming, Reply

PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>partnermesh API</title>
<link rel="icon" type="image/png" href="/docs/favicon.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

INIT = b"""window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""

# the page's policy: everything from the gateway; Swagger UI sets inline style attributes
CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)

JS = b"text/javascript; charset=utf-8"
ASSETS = {  # path -> (file in fastapi_offline/static, content type)
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.js", JS),
    "/docs/swagger-ui.css": ("swagger-ui.css", b"text/css; charset=utf-8"),
    "/docs/favicon.png": ("favicon.png", b"image/png"),
}


def docs_routes() -> list[tuple[str, str, Endpoint]]:
    """``(method, path, endpoint)`` of the page, its start script and Swagger UI's files
    (read once, at start)."""
    static = resources.files("fastapi_offline") / "static"

    def serving(body: bytes, content_type: bytes) -> Endpoint:
        async def endpoint(request: Incoming, rl: dict[str, str]) -> Reply:
            request.info.route = "docs"
            return Reply(200, body, content_type)

        return guarded(endpoint)

    routes = [
        ("GET", "/docs", serving(PAGE, b"text/html; charset=utf-8")),
        ("GET", "/docs/init.js", serving(INIT, JS)),
    ]
    for path, (name, content_type) in ASSETS.items():
        routes.append(("GET", path, serving((static / name).read_bytes(), content_type)))
    return routes
