"""Sign in to the portal with plain httpx, through the real identity login page."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from html import unescape
from urllib.parse import urljoin

import httpx

from identity.cli.seed import PASSWORD
from tests.portal.mesh import Mesh


def form_of(html: str) -> tuple[str, dict[str, str]]:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, "no form on the page"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return unescape(match.group(1)), {k: unescape(v) for k, v in fields.items()}


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class SignedIn(httpx.AsyncClient):
    """A portal browser; ``last_page`` is the page its sign-in ended on."""

    last_page: httpx.Response


@contextlib.asynccontextmanager
async def sign_in(mesh: Mesh, username: str, next_path: str = "/") -> AsyncIterator[SignedIn]:
    """A browser-like client signed in to the portal as ``username`` (cookies only)."""
    async with SignedIn(base_url=mesh.portal_url, follow_redirects=True, timeout=15) as c:
        c.last_page = await _sign_in(c, mesh, username, next_path)
        yield c


async def _sign_in(
    client: httpx.AsyncClient, mesh: Mesh, username: str, next_path: str
) -> httpx.Response:
    page = await client.get("/auth/login", params={"next": next_path})
    assert 'name="password"' in page.text, page.text[:500]
    action, fields = form_of(page.text)
    page = await client.post(
        urljoin(str(page.url), action),
        data={**fields, "username": username, "password": PASSWORD},
    )
    if 'name="decision"' in page.text:
        action, fields = form_of(page.text)
        page = await client.post(
            urljoin(str(page.url), action), data={**fields, "decision": "allow"}
        )
    assert str(page.url).startswith(mesh.portal_url), page.url
    assert page.status_code == 200, page.text[:500]
    return page
