"""The browser cookies of the provider's pages: the sign-in session and the CSRF cookie.

The session cookie holds a random session id (stored hashed), is scoped to the
ecosystem's issuer path (``/eco/{eco}/``), HTTP-only, ``SameSite=Lax``, ``Secure``
outside development, and lives as long as the session. The CSRF cookie is the double
submit's other half (every form carries its MAC).
"""

from __future__ import annotations

from fastapi import Request, Response

from identity.domain.pending import TTL_S as PENDING_TTL_S
from identity.settings import IdentitySettings

SESSION_COOKIE = "pm_session"
CSRF_COOKIE = "pm_csrf"


def session_id(request: Request) -> str | None:
    """The session id the browser sent, if any."""
    return request.cookies.get(SESSION_COOKIE)


def set_session(response: Response, settings: IdentitySettings, eco: str, sid: str) -> None:
    """Sign the browser in to ecosystem ``eco`` with session ``sid``."""
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        samesite="lax",
        path=f"/eco/{eco}/",
        secure=settings.secure_cookies,
        max_age=settings.session_ttl_s,
    )


def clear_session(response: Response, eco: str) -> None:
    """Sign the browser out of ecosystem ``eco``."""
    response.delete_cookie(SESSION_COOKIE, path=f"/eco/{eco}/")


def set_csrf(response: Response, settings: IdentitySettings, value: str) -> None:
    """The CSRF cookie whose MAC the page's forms carry."""
    response.set_cookie(
        CSRF_COOKIE,
        value,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


PENDING_COOKIE = "pm_pending"


def pending(request: Request) -> str | None:
    """The sealed half-done sign-in the browser sent, if any (:mod:`identity.domain.pending`)."""
    return request.cookies.get(PENDING_COOKIE)


def set_pending(response: Response, settings: IdentitySettings, eco: str, value: str) -> None:
    """A password was right, a second factor is due: the half-done sign-in (as long as it
    lasts)."""
    response.set_cookie(
        PENDING_COOKIE,
        value,
        httponly=True,
        samesite="lax",
        path=f"/eco/{eco}/",
        secure=settings.secure_cookies,
        max_age=PENDING_TTL_S,
    )


def clear_pending(response: Response, eco: str) -> None:
    response.delete_cookie(PENDING_COOKIE, path=f"/eco/{eco}/")
