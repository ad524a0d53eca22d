"""Drive the real authorization-code + PKCE flow with httpx (launcher, tests, scripts).

It fetches discovery, opens the authorize URL, fills the login form (and the consent
form when one is shown) exactly as a browser would, catches the redirect to
``redirect_uri`` and exchanges the code at the token endpoint.
"""

from __future__ import annotations

import re
import secrets
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from identity.domain.crypto import pkce_pair


class LoginFailed(RuntimeError):
    pass


def _form(html: str) -> tuple[str, dict[str, str]]:
    """The first POST form's action and its hidden fields."""
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    if not match:
        raise LoginFailed("no form on the page")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return unescape(match.group(1)), {k: unescape(v) for k, v in fields.items()}


async def _follow(
    http: httpx.AsyncClient, resp: httpx.Response, redirect_uri: str
) -> httpx.Response:
    """Follow redirects until one leaves for ``redirect_uri`` or a page is shown."""
    for _ in range(10):
        location = resp.headers.get("location")
        if resp.status_code not in (301, 302, 303, 307) or not location:
            return resp
        target = urljoin(str(resp.url), location)
        if target.startswith(redirect_uri):
            return resp
        resp = await http.get(target)
    raise LoginFailed("too many redirects")


def _code_from(resp: httpx.Response, redirect_uri: str, state: str) -> str:
    location: str = resp.headers.get("location", "")
    if not location.startswith(redirect_uri):
        raise LoginFailed(f"sign-in did not complete (HTTP {resp.status_code})")
    params = parse_qs(urlsplit(location).query)
    if "error" in params:
        raise LoginFailed(f"authorization failed: {params['error'][0]}")
    if params.get("state", [""])[0] != state:
        raise LoginFailed("state mismatch")
    return params["code"][0]


async def login(
    http: httpx.AsyncClient,
    issuer: str,
    client_id: str,
    username: str,
    password: str,
    redirect_uri: str,
    scope: str,
    client_secret: str | None = None,
) -> dict[str, Any]:
    """Sign ``username`` in through the real pages; returns the token response.
    ``client_secret``: a confidential client's (HTTP Basic at the token endpoint).

    ``prompt=login`` makes the provider ask for credentials even when ``http`` still
    carries another person's session cookie, so one client can sign in many people.
    """
    meta = (await http.get(f"{issuer}/.well-known/openid-configuration")).raise_for_status().json()
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "prompt": "login",
    }
    resp = await _follow(
        http, await http.get(meta["authorization_endpoint"], params=params), redirect_uri
    )
    if resp.status_code == 200 and 'name="password"' in resp.text:
        action, fields = _form(resp.text)
        resp = await http.post(
            urljoin(str(resp.url), action),
            data={**fields, "username": username, "password": password},
        )
        if resp.status_code != 303:
            raise LoginFailed(f"login refused (HTTP {resp.status_code})")
        resp = await _follow(http, resp, redirect_uri)
    if resp.status_code == 200 and 'name="decision"' in resp.text:
        action, fields = _form(resp.text)
        resp = await http.post(urljoin(str(resp.url), action), data={**fields, "decision": "allow"})
    code = _code_from(resp, redirect_uri, state)
    token = await http.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
        auth=(client_id, client_secret) if client_secret else httpx.USE_CLIENT_DEFAULT,
    )
    if token.status_code != 200:
        raise LoginFailed(f"code exchange failed: {token.text}")
    result: dict[str, Any] = token.json()
    return result
