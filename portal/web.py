"""Request plumbing shared by every page: the portal's state, the signed-in context, rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from mesh.db import Database
from portal import markup
from portal.api import ApiError, Gateway
from portal.oidc import OidcClient
from portal.security import UNSAFE_METHODS, csrf_ok
from portal.sessions import Session, SessionStore, cookie_name
from portal.settings import PortalSettings

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
markup.install(TEMPLATES.env)


@dataclass
class Portal:
    settings: PortalSettings
    db: Database
    http: httpx.AsyncClient
    oidc: OidcClient
    gateway: Gateway
    store: SessionStore
    cards: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)


class NeedLogin(Exception):
    """No (longer a) valid session: pages redirect to sign-in, JSON routes answer 401."""


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token."""


def portal_of(request: Request) -> Portal:
    return request.app.state.portal  # type: ignore[no-any-return]


@dataclass
class Ctx:
    """A signed-in request: the person's session and a fresh access token for the gateway."""

    request: Request
    portal: Portal
    session: Session
    token: str

    async def call(self, op: str, /, **params: Any) -> Any:
        return await self.portal.gateway.call(self.token, op, **params)

    async def attempt(self, op: str, /, **params: Any) -> tuple[Any, ApiError | None]:
        """Call and keep the error for the page to show, instead of failing the whole page."""
        try:
            return await self.call(op, **params), None
        except ApiError as exc:
            if exc.status == 401:  # the session is over, not just this part of the page
                raise
            return None, exc

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render(self.request, template, self.session, status=status, **values)


def render(
    request: Request, template: str, session: Session | None, status: int = 200, **values: Any
) -> HTMLResponse:
    portal = portal_of(request)
    values.update(
        me=session,
        csrf=session.csrf if session else "",
        eco=portal.settings.eco,
        path=request.url.path,
    )
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status)


async def current_session(request: Request) -> Session | None:
    portal = portal_of(request)
    cookie = request.cookies.get(cookie_name(portal.settings.secure_cookies))
    return await portal.store.load(cookie)


async def signed_in(request: Request) -> Ctx:
    portal = portal_of(request)
    session = await current_session(request)
    if session is None:
        raise NeedLogin()
    if request.method in UNSAFE_METHODS:
        given = request.headers.get("x-csrf-token")
        if given is None and "form" in request.headers.get("content-type", ""):
            field = (await request.form()).get("csrf")
            given = field if isinstance(field, str) else None
        if not csrf_ok(session.csrf, given):
            raise CsrfRefused()
    tokens = await portal.store.fresh_tokens(session, portal.oidc)
    if tokens is None:
        raise NeedLogin()
    return Ctx(request, portal, session, tokens.access_token)


CtxDep = Annotated[Ctx, Depends(signed_in)]


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/auth/login?next=" + quote(target, safe="")


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
