"""Interoperability with a relying-party library we did not write: panva's ``openid-client``
(v6, pinned with its lock file in ``tests/identity/interop/``) drives a real identity
through discovery, authorization code + PKCE, refresh, client credentials, token
exchange, DPoP, the device flow, pushed authorization requests (RFC 9126),
``response_mode=form_post``, the ``iss`` response parameter (RFC 9207) and a step-up
through ``acr_values`` to a sign-in with an authenticator app (``acr``, ``amr``), in one Node
process (``interop.mjs``).

The packages are installed with ``npm ci`` on first use under ``test-artifacts/``
(``make clean`` removes it). Without node and npm this test fails: it is part of CI.
Where a person acts in a browser the script asks, and this test signs them in with an
HTTP client through identity's real pages.

To add a case, write it in ``interop.mjs`` and name it in :data:`CASES`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from identity.cli import seed
from identity.cli.devclient import _form
from tests.identity.conftest import CLI_REDIRECT, IdP
from tests.identity.factor_support import code, person_with_app

PASSWORD = "correct-horse-battery-staple"

HERE = Path(__file__).parent / "interop"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "openid-client"
CASES = [
    "discovery",
    "authorizationCodePkce",
    "refresh",
    "clientCredentials",
    "tokenExchange",
    "dpop",
    "deviceFlow",
    "pushedAuthorizationRequest",
    "formPost",
    "authorizationResponseIss",
    "acrStepUp",
]


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """The device polls every second (openid-client waits the interval between polls)."""
    return {"device_interval_s": 1}


def install() -> Path:
    """openid-client as the lock file pins it, under test-artifacts/ (once per lock)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the openid-client interop test needs node (>= 20) and npm on PATH"
    lock = (HERE / "package-lock.json").read_bytes()
    stamp = ARTIFACTS / ".lock-sha256"
    digest = hashlib.sha256(lock + (HERE / "package.json").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(HERE / name, ARTIFACTS / name)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=ARTIFACTS,
            check=True,
            timeout=300,
        )
        stamp.write_text(digest)
    shutil.copy(HERE / "interop.mjs", ARTIFACTS / "interop.mjs")
    return ARTIFACTS / "interop.mjs"


async def _follow(browser: httpx.AsyncClient, url: str, stop: str) -> httpx.Response:
    """GET ``url`` and its redirects until one leaves for ``stop`` or a page is shown."""
    resp = await browser.get(url)
    for _ in range(10):
        location = resp.headers.get("location")
        if resp.status_code not in (302, 303) or not location:
            return resp
        target = urljoin(str(resp.url), location)
        if target.startswith(stop):
            return resp
        resp = await browser.get(target)
    raise AssertionError("too many redirects")


async def _sign_in(browser: httpx.AsyncClient, page: httpx.Response, username: str) -> Any:
    action, fields = _form(page.text)
    return await browser.post(
        urljoin(str(page.url), action),
        data={**fields, "username": username, "password": seed.PASSWORD},
    )


async def _login(url: str) -> dict[str, Any]:
    """Noah signs in (and consents) in a browser: the callback URL with the code, or the
    fields of the page that posts them (``response_mode=form_post``)."""
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await _follow(browser, url, CLI_REDIRECT)
        resp = await _sign_in(browser, page, "noah")
        resp = await _follow(
            browser, urljoin(str(resp.url), resp.headers["location"]), CLI_REDIRECT
        )
        if resp.status_code == 200 and 'name="decision"' in resp.text:
            action, fields = _form(resp.text)
            resp = await browser.post(
                urljoin(str(resp.url), action), data={**fields, "decision": "allow"}
            )
        if resp.status_code in (302, 303):
            return {"callback": urljoin(str(resp.url), resp.headers["location"])}
        action, fields = _form(resp.text)
        assert action.startswith(CLI_REDIRECT), resp.text[:300]
        return {"form": fields}


async def _login_with_app(idp: IdP, url: str) -> dict[str, Any]:
    """A person with an authenticator app signs in: password, then the app's code."""
    operator = str((await idp.person_tokens("olivia"))["access_token"])
    username, key = await person_with_app(idp, operator, PASSWORD)
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await _follow(browser, url, CLI_REDIRECT)
        action, fields = _form(page.text)
        resp = await browser.post(
            urljoin(str(page.url), action),
            data={**fields, "username": username, "password": PASSWORD},
        )
        page = await browser.get(urljoin(str(resp.url), resp.headers["location"]))
        action, fields = _form(page.text)
        resp = await browser.post(
            urljoin(str(page.url), action), data={**fields, "code": code(key, 1)}
        )
        resp = await _follow(
            browser, urljoin(str(resp.url), resp.headers["location"]), CLI_REDIRECT
        )
        if resp.status_code == 200 and 'name="decision"' in resp.text:
            action, fields = _form(resp.text)
            resp = await browser.post(
                urljoin(str(resp.url), action), data={**fields, "decision": "allow"}
            )
        return {"callback": urljoin(str(resp.url), resp.headers["location"])}


async def _approve_device(url: str) -> None:
    """Noah opens the device's verification URI, signs in and allows it."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=True) as browser:
        page = await _sign_in(browser, await browser.get(url), "noah")
        action, fields = _form(page.text)
        done = await browser.post(
            urljoin(str(page.url), action), data={**fields, "decision": "allow"}
        )
        assert done.status_code == 200, done.text[:300]


@pytest.fixture(scope="module")
async def results(idp: IdP, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every case's outcome, from one run of interop.mjs against the module's identity."""
    script = await asyncio.to_thread(install)
    config = tmp_path_factory.mktemp("interop") / "config.json"
    config.write_text(
        json.dumps(
            {
                "issuer": idp.issuer,
                "public": {"client_id": "mesh-cli", "redirect_uri": CLI_REDIRECT},
                "backend": {
                    "client_id": "northwind-backend",
                    "client_secret": idp.secret("northwind-backend"),
                },
                "device": {"client_id": "mesh-device"},
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        str(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=script.parent,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        async with asyncio.timeout(120):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    err = (await proc.stderr.read()).decode()
                    raise AssertionError(f"interop.mjs ended without results: {err[-2000:]}")
                message = json.loads(line)
                if "results" in message:
                    return dict(message["results"])
                if message.get("need") == "login":
                    answer: dict[str, Any] = await _login(message["url"])
                elif message.get("need") == "login_mfa":
                    answer = await _login_with_app(idp, message["url"])
                else:
                    await _approve_device(message["url"])
                    answer = {"done": True}
                proc.stdin.write((json.dumps(answer) + "\n").encode())
                await proc.stdin.drain()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


@pytest.mark.parametrize("case", CASES)
async def test_openid_client(results: dict[str, str], case: str) -> None:
    assert results.get(case) == "ok", results.get(case, "the script did not run this case")


async def test_every_case_of_the_script_is_checked(results: dict[str, str]) -> None:
    assert sorted(results) == sorted(CASES)
