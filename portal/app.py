"""The portal application: ``create_app(settings)``; ``python -m portal`` runs it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from mesh import migrate
from mesh.db import Database
from mesh.defaults import ProcessDefaults, process_defaults
from portal import errors, models
from portal.api import ApiError, Gateway
from portal.oidc import OidcClient
from portal.security import SecurityHeaders
from portal.sessions import SessionStore
from portal.settings import PortalSettings
from portal.views import (
    alliances,
    allies,
    auth,
    connectors,
    consoles,
    conversations,
    dashboards,
    directory_sync,
    flows,
    forums,
    home,
    installable,
    intros,
    jsonapi,
    notifications,
    people,
    pictures,
    search,
    team,
    webhooks,
    workspaces,
)
from portal.web import (
    CsrfRefused,
    NeedLogin,
    Portal,
    current_session,
    login_url,
    portal_of,
    render,
)

STATIC = Path(__file__).parent / "static"


def _lifespan(settings: PortalSettings, defaults: ProcessDefaults):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url_or_default(), models.metadata)
        await migrate.prepare(db, settings.migrates_on_start())
        async with (
            contextlib.AsyncExitStack() as stack,  # the operations port
            # identity (OIDC back-channel, admin API): at its internal address if set
            httpx.AsyncClient(
                timeout=10.0, transport=settings.identity_route().transport()
            ) as http,
            httpx.AsyncClient(
                base_url=settings.gateway_url, timeout=settings.gateway_timeout
            ) as gw,
        ):
            await defaults.start()
            stack.push_async_callback(defaults.stop)
            oidc = OidcClient(
                http,
                settings.issuer,
                settings.client_id,
                settings.resolved_client_secret(),
                settings.redirect_uri,
            )
            store = SessionStore(
                db,
                settings.secret_key,
                settings.session_idle_seconds,
                settings.refresh_margin_seconds,
            )
            app.state.portal = Portal(settings, db, http, oidc, Gateway(gw, settings.eco), store)
            yield
        await db.dispose()

    return lifespan


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _install_errors(app: FastAPI) -> None:
    errors.install(app)  # Starlette's refusals and unexpected errors: pages, never traces

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, _exc: NeedLogin) -> Response:
        if _wants_json(request) or request.method != "GET":
            return JSONResponse({"error": "sign in first"}, status_code=401)
        return RedirectResponse(login_url(request), status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _exc: CsrfRefused) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        session = await current_session(request)
        return render(
            request,
            "error.html",
            session,
            status=403,
            title="Form expired",
            message="This form is stale or was not sent from the portal. "
            "Go back, reload the page and try again.",
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        if exc.status == 401:  # the gateway no longer accepts the session's token
            session = await current_session(request)
            if session is not None:
                await portal_of(request).store.destroy(session)
            return await need_login(request, NeedLogin())
        if _wants_json(request):
            return JSONResponse({"error": exc.detail, "code": exc.code}, status_code=exc.status)
        session = await current_session(request)
        title = {404: "Not found", 403: "Not allowed"}.get(exc.status, "Something went wrong")
        return render(
            request, "error.html", session, status=exc.status, title=title, message=exc.detail
        )


async def _ready(app: FastAPI) -> bool:
    """Serving (its database migrated: start-up waits for that) and the database answers."""
    portal: Portal | None = getattr(app.state, "portal", None)
    return portal is not None and await portal.db.ping()


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    # Logging is set up by ``python -m portal``.
    defaults = process_defaults(
        "portal",
        settings,
        lambda: _ready(app),
        lambda: ["the database does not answer"],
        setup_logging=False,
    )
    app = FastAPI(
        title="partnermesh portal",
        lifespan=_lifespan(settings, defaults),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        installable,
        auth,
        home,
        people,
        forums,
        workspaces,
        intros,
        consoles,
        alliances,
        allies,
        webhooks,
        flows,
        conversations,
        pictures,
        connectors,
        dashboards,
        team,
        directory_sync,
        search,
        jsonapi,
        notifications,
    ):
        app.include_router(module.router)
    _install_errors(app)

    defaults.probes(app)
    app.add_middleware(
        SecurityHeaders, public_url=settings.public_url, identity_url=settings.identity_url
    )
    return app
