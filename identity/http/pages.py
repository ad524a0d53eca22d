"""What every browser page of the provider shares: rendering with its security headers,
the CSRF double submit, and where a page may send the browser back to.

Server-rendered (Jinja2); every form carries a CSRF token bound to a cookie (double
submit, MAC'd with the deployment secret). The one script, ``static/passkeys.js`` (the
WebAuthn ceremonies), is a file of this origin: the policy allows scripts and fetches
of ``'self'`` only, never inline script. The pages themselves:
:mod:`identity.http.authorize` (authorize, consent), :mod:`identity.http.login`
(sign-in), :mod:`identity.http.passkeys`, :mod:`identity.http.account`,
:mod:`identity.http.signup`, :mod:`identity.http.logout` and :mod:`identity.http.broker`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from identity.domain.crypto import new_secret
from identity.http import cookies
from identity.http.runtime import IdentityRuntime

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def csrf_token(request: Request, rt: IdentityRuntime) -> tuple[str, str]:
    cookie = request.cookies.get(cookies.CSRF_COOKIE) or new_secret()
    return cookie, rt.sealer.mac(cookie)


def csrf_ok(request: Request, rt: IdentityRuntime, token: str | None) -> bool:
    cookie = request.cookies.get(cookies.CSRF_COOKIE)
    return bool(cookie and token) and rt.sealer.check_mac(cookie or "", token or "")


def render(
    request: Request, rt: IdentityRuntime, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    cookie, token = csrf_token(request, rt)
    ctx = {"csrf_token": token, **context}
    response = rt.templates.TemplateResponse(request, template, ctx, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    cookies.set_csrf(response, rt.settings, cookie)
    return response


def form_expired(request: Request, rt: IdentityRuntime) -> Response:
    """A form whose CSRF token does not check out: 403, nothing done."""
    return render(
        request,
        rt,
        "message.html",
        {"title": "Form expired", "detail": "Please go back and try again."},
        403,
    )


def safe_return(eco: str, target: str | None) -> str:
    """Only paths of this ecosystem's issuer (no open redirect)."""
    base = f"/eco/{eco}/"
    if target and target.startswith(base) and "//" not in target and "\\" not in target:
        return target
    return base + "account"
