"""Request plumbing shared by every page: the portal's state, the signed-in context, rendering."""

from __future__ import annotations

import base64
import contextvars
import hmac
import time
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
COMPANY_NAMES_TTL = 60.0
_companies: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("companies")


def company_name(slug: str | None) -> str:
    """The company's name where templates would show its partner slug ("acme-hq")."""
    if not slug:
        return ""
    return _companies.get({}).get(slug, slug)


TEMPLATES.env.globals["company"] = company_name
TEMPLATES.env.filters["company"] = company_name


@dataclass
class Portal:
    settings: PortalSettings
    db: Database
    http: httpx.AsyncClient
    oidc: OidcClient
    gateway: Gateway
    store: SessionStore
    cards: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)
    companies: dict[str, str] = field(default_factory=dict)  # partner slug → company name
    companies_until: float = 0.0
    faces: dict[str, tuple[float, str | None]] = field(default_factory=dict)  # person → picture


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
    _companies.set(portal.companies)
    flashes = list(values.pop("flashes", []))
    signed_out = bool(values.pop("signed_out", False))
    done = DONE.get(request.query_params.get("done", ""))
    if done:
        flashes.append(done)
    values.update(
        me=session,
        unread_count=getattr(request.state, "unread", None),
        csrf=session.csrf if session else "",
        eco=portal.settings.eco,
        path=request.url.path,
        flashes=flashes,
        canonical=_canonical(request, portal.settings.public_url),
        offline=_offline_key(portal.settings, session),
        signed_out=signed_out,
    )
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status)
    if values["offline"]:  # the service worker keeps this person's pages under this name
        response.headers["X-PM-Offline"] = values["offline"]
    if signed_out:  # the service worker and portal.js forget every offline page here
        response.headers["X-PM-Signed-Out"] = "1"
    return response


def _offline_key(settings: PortalSettings, session: Session | None) -> str:
    """The name of a person's offline cache: stable for them, meaningless to anyone else."""
    if session is None:
        return ""
    key = f"portal-offline:{settings.secret_key}".encode()
    mac = hmac.new(key, f"{session.eco}\n{session.sub}".encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode()


# Confirmations after a successful action: the action redirects to its page with ?done=<key>.
DONE = {
    "profile": "Profile saved.",
    "picture": "Picture saved.",
    "conversation": "Your direct conversation: only the two of you can read it.",
    "company": "Company profile saved.",
    "approved": "Introduction approved: both people are asked now.",
    "rejected": "Introduction rejected.",
    "proposed": "Introduction proposed.",
    "verified": "Verified.",
    "revoked": "Verification revoked.",
    "accepted": "You accepted the introduction.",
    "declined": "You declined the introduction.",
    "partner": "Partner added.",
    "category": "Category created.",
    "person": "Account updated.",
    "backend": "Back-end registered.",
    "operation": "Operation declared.",
    "grant": "Grant created.",
    "grant-revoked": "Grant revoked.",
    "replayed": "Delivery queued again.",
    "unsubscribed": "Subscription stopped.",
    "posted": "Posted.",
    "moderated": "Done: recorded in the moderation log.",
    "read": "Marked as read.",
    "preferences": "Notification settings saved.",
    "push": "Push settings saved.",
    "scim-revoked": "Directory token revoked: the directory can no longer use it.",
    "scim-rules": "Group rules saved: your people's roles follow them now.",
    "alliance-proposed": "Alliance proposed: the other ecosystem's operators review it now.",
    "alliance-countered": "Counter-offer sent: the other ecosystem's operators review it now.",
    "alliance-accepted": "Alliance accepted: its terms apply now.",
    "alliance-rejected": "Alliance rejected.",
    "alliance-suspended": "Alliance suspended: nothing crosses until it is resumed.",
    "alliance-resumed": "Alliance resumed: its terms apply again.",
    "alliance-ended": "Alliance ended.",
}


def done(path: str, key: str) -> str:
    """``path`` with the confirmation ``key`` (see :data:`DONE`), before any #fragment."""
    page, _, fragment = path.partition("#")
    sep = "&" if "?" in page else "?"
    return f"{page}{sep}done={key}" + (f"#{fragment}" if fragment else "")


def _canonical(request: Request, public_url: str) -> str:
    """For a page answered to a form post: the page the form was on (same origin only)."""
    if request.method != "POST":
        return ""
    referer = request.headers.get("referer", "")
    origin = public_url.rstrip("/")
    if not referer.startswith(origin + "/"):
        return ""
    path = referer[len(origin) :]
    return safe_next(path.split("#")[0])


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
    await _refresh_company_names(portal, tokens.access_token)
    if request.method == "GET" and not request.url.path.startswith("/api/"):
        await _unread_count(request, portal, tokens.access_token)
    return Ctx(request, portal, session, tokens.access_token)


async def _unread_count(request: Request, portal: Portal, token: str) -> None:
    """The nav's unread count (a page renders without it when it cannot be had)."""
    try:
        box = await portal.gateway.call(
            token, "collaboration.notifications.list", unread_only=True, limit=1
        )
    except ApiError:
        return
    if isinstance(box, dict) and isinstance(box.get("unread"), int):
        request.state.unread = box["unread"]


async def _refresh_company_names(portal: Portal, token: str) -> None:
    """Company names are public in the ecosystem: one directory read a minute serves all."""
    now = time.monotonic()
    if portal.companies_until > now:
        return
    portal.companies_until = now + COMPANY_NAMES_TTL
    try:
        found = await portal.gateway.call(
            token, "profile.directory.search", kind="company", sort="name", page_size=100
        )
    except ApiError:
        portal.companies_until = now + 5.0
        return
    portal.companies = {
        str(e["id"]): str(e.get("name") or e["id"]) for e in found.get("entries", [])
    }


CtxDep = Annotated[Ctx, Depends(signed_in)]


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/auth/login?next=" + quote(target, safe="")


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
