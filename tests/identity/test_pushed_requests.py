"""Pushed authorization requests (RFC 9126) through the real endpoints: push, then sign in
with the ``request_uri``; single use, expiry, bound to its client, shared by replicas,
required per client or per ecosystem, and no parameter beside it that it does not say."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from identity.domain.crypto import digest, pkce_pair
from identity.http.app import create_app
from identity.store import models
from mesh.db import Database
from tests.identity.conftest import CLI_REDIRECT, PORTAL_REDIRECT, IdP
from tests.identity.test_relying_party import Browser, redeem, response_params
from tests.support import infra
from tests.support.identity import serve_idp

URN = "urn:ietf:params:oauth:request_uri:"
PORTAL_REQUEST = {
    "response_type": "code",
    "redirect_uri": PORTAL_REDIRECT,
    "scope": "openid profile",
    "state": "st",
}


async def push(idp: IdP, base: str | None = None, **params: str) -> httpx.Response:
    """The portal pushes an authorization request (HTTP Basic)."""
    return await idp.http.post(
        f"{base or idp.issuer}/par",
        data={**PORTAL_REQUEST, **params},
        auth=("portal", idp.secret("portal")),
    )


async def pushed_uri(idp: Any, **params: str) -> str:
    resp = await push(idp, **params)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["request_uri"])


async def authorize(person: Browser, request_uri: str, **extra: str) -> httpx.Response:
    params = {"client_id": "portal", "request_uri": request_uri, **extra}
    resp = await person.http.get(f"{person.idp.issuer}/authorize", params=params)
    return await person.follow(resp)


def refused(resp: httpx.Response, error: str, words: str) -> None:
    """An error page of the provider (not a redirect to the client)."""
    assert resp.status_code == 400, resp.text[-300:]
    assert "location" not in resp.headers
    assert error in resp.text and words in resp.text


async def _set(idp: Any, table: Any, where: Any, **values: Any) -> None:
    db = Database(idp.settings.database_url, models.metadata)
    try:
        async with db.transaction() as s:
            await s.execute(update(table).where(where).values(**values))
    finally:
        await db.dispose()


async def _age_pushed(idp: Any, uri: str, seconds: int) -> None:
    """Let ``seconds`` pass for the pushed request ``uri``, as the clock would."""
    table = models.PushedRequest
    db = Database(idp.settings.database_url, models.metadata)
    try:
        async with db.transaction() as s:
            row = (await s.execute(select(table).where(table.uri_hash == digest(uri)))).scalar_one()
            row.expires_at = row.expires_at - timedelta(seconds=seconds)
    finally:
        await db.dispose()


@pytest.fixture
async def person(idp: IdP) -> AsyncIterator[Browser]:
    """chloe's browser, signed in once already."""
    async with httpx.AsyncClient(timeout=10) as http:
        person = Browser(idp, http)
        response_params(await person.authorize())
        yield person


@pytest.fixture(scope="module")
async def operator(idp: IdP) -> dict[str, str]:
    """Headers of an operator of the ecosystem (its admin API)."""
    token = (await idp.person_tokens("olivia"))["access_token"]
    return {"Authorization": f"Bearer {token}"}


class TestPush:
    async def test_push_then_sign_in_with_the_request_uri(self, idp: IdP, person: Browser) -> None:
        resp = await push(idp, nonce="n-1")
        assert resp.status_code == 201, resp.text
        assert resp.headers["cache-control"] == "no-store"
        body = resp.json()
        assert body["expires_in"] == 60 and re.fullmatch(URN + r"[\w-]{40,}", body["request_uri"])
        params = response_params(await authorize(person, body["request_uri"]))
        assert params["state"] == "st" and params["iss"] == idp.issuer
        tokens = await redeem(idp, params["code"])
        assert "profile" in tokens["scope"].split()

    async def test_a_sign_in_on_the_way_keeps_the_request_uri_until_the_answer(
        self, idp: IdP, person: Browser
    ) -> None:
        uri = await pushed_uri(idp, prompt="login")
        resp = await person.http.get(
            f"{idp.issuer}/authorize", params={"client_id": "portal", "request_uri": uri}
        )
        assert resp.headers["location"].startswith(f"/eco/{idp.eco}/login")
        await _age_pushed(idp, uri, 61)  # the sign-in takes longer than the URI's minute
        params = response_params(await person.follow(resp))
        assert params["code"] and person.logins == 2
        refused(await authorize(person, uri), "invalid_request_uri", "used already")

    async def test_a_public_client_pushes_with_pkce(self, idp: IdP, person: Browser) -> None:
        _verifier, challenge = pkce_pair()
        resp = await idp.http.post(
            f"{idp.issuer}/par",
            data={
                "client_id": "mesh-cli",
                "response_type": "code",
                "redirect_uri": CLI_REDIRECT,
                "scope": "openid",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert resp.status_code == 201, resp.text
        without_pkce = await idp.http.post(
            f"{idp.issuer}/par",
            data={
                "client_id": "mesh-cli",
                "response_type": "code",
                "redirect_uri": CLI_REDIRECT,
                "scope": "openid",
            },
        )
        assert without_pkce.status_code == 400
        assert without_pkce.json()["error"] == "invalid_request"

    async def test_a_form_post_request_is_pushed_too(self, idp: IdP, person: Browser) -> None:
        uri = await pushed_uri(idp, response_mode="form_post")
        page = await authorize(person, uri)
        assert page.status_code == 200 and 'name="iss"' in page.text
        assert f'action="{PORTAL_REDIRECT}"' in page.text

    async def test_the_same_parameters_may_stand_beside_the_request_uri(
        self, idp: IdP, person: Browser
    ) -> None:
        uri = await pushed_uri(idp)
        resp = await authorize(person, uri, response_type="code", scope="openid profile")
        assert response_params(resp)["code"]


class TestPushRefused:
    @pytest.mark.parametrize(
        ("params", "error"),
        [
            ({"redirect_uri": "http://evil.example/cb"}, "invalid_request"),
            ({"response_type": "token"}, "unsupported_response_type"),
            ({"scope": "openid launch:missiles"}, "invalid_scope"),
            ({"response_mode": "fragment"}, "invalid_request"),
            ({"request_uri": URN + "x"}, "invalid_request"),
            ({"client_id": "mesh-cli"}, "invalid_request"),
        ],
        ids=["redirect", "response-type", "scope", "response-mode", "request-uri", "other-id"],
    )
    async def test_what_authorize_would_refuse_is_refused_here(
        self, idp: IdP, params: dict[str, str] | dict[str, Any], error: str
    ) -> None:
        resp = await push(idp, **params)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == error
        assert "location" not in resp.headers and "state" not in resp.json()

    async def test_client_authentication_as_at_the_token_endpoint(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/par", data=PORTAL_REQUEST, auth=("portal", "wrong")
        )
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
        anonymous = await idp.http.post(
            f"{idp.issuer}/par", data={**PORTAL_REQUEST, "client_id": "portal"}
        )
        assert anonymous.status_code == 401
        assert "registered for client_secret_basic" in anonymous.json()["error_description"]


class TestRequestUriRefused:
    async def test_a_used_request_uri_is_refused(self, idp: IdP, person: Browser) -> None:
        uri = await pushed_uri(idp)
        assert response_params(await authorize(person, uri))["code"]
        refused(await authorize(person, uri), "invalid_request_uri", "used already")

    async def test_an_expired_request_uri_is_refused(self, idp: IdP, person: Browser) -> None:
        uri = await pushed_uri(idp)
        past = datetime.now(UTC) - timedelta(seconds=1)
        await _set(
            idp, models.PushedRequest, models.PushedRequest.uri_hash == digest(uri), expires_at=past
        )
        refused(await authorize(person, uri), "invalid_request_uri", "expired")

    async def test_another_clients_request_uri_is_refused(self, idp: IdP, person: Browser) -> None:
        uri = await pushed_uri(idp)
        resp = await person.http.get(
            f"{idp.issuer}/authorize", params={"client_id": "mesh-cli", "request_uri": uri}
        )
        refused(resp, "invalid_request_uri", "another client")
        missing = await person.http.get(f"{idp.issuer}/authorize", params={"request_uri": uri})
        refused(missing, "invalid_request_uri", "another client")
        # refusing it did not spend it: its own client still can
        assert response_params(await authorize(person, uri))["code"]

    @pytest.mark.parametrize("uri", [URN + "never-issued", "https://rp.example/request.jwt"])
    async def test_an_unknown_request_uri_is_refused(
        self, idp: IdP, person: Browser, uri: str
    ) -> None:
        refused(await authorize(person, uri), "invalid_request_uri", "request_uri")

    @pytest.mark.parametrize(
        "extra",
        [{"scope": "openid admin"}, {"redirect_uri": CLI_REDIRECT}, {"prompt": "none"}],
        ids=["other-scope", "other-redirect", "not-pushed"],
    )
    async def test_a_parameter_the_pushed_request_does_not_say_is_refused(
        self, idp: IdP, person: Browser, extra: dict[str, str] | dict[str, Any]
    ) -> None:
        uri = await pushed_uri(idp)
        resp = await authorize(person, uri, **extra)
        refused(resp, "invalid_request", f"{next(iter(extra))} differs from the pushed")


class TestRequired:
    async def test_a_client_that_must_push(
        self, idp: IdP, person: Browser, operator: dict[str, str]
    ) -> None:
        created = await idp.http.post(
            f"{idp.issuer}/admin/clients",
            headers=operator,
            json={
                "client_id": "par-only",
                "name": "PAR only",
                "partner": "acme-hq",
                "grant_types": ["authorization_code"],
                "scopes": ["openid"],
                "redirect_uris": [PORTAL_REDIRECT],
                "first_party": True,
                "require_pushed_authorization_requests": True,
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["require_pushed_authorization_requests"] is True
        auth = ("par-only", created.json()["client_secret"])
        plain = {**PORTAL_REQUEST, "client_id": "par-only", "scope": "openid"}
        resp = await person.http.get(f"{idp.issuer}/authorize", params=plain)
        params = response_params(resp)
        assert params["error"] == "invalid_request" and "pushed" in params["error_description"]
        assert params["iss"] == idp.issuer and "code" not in params
        pushed = await idp.http.post(f"{idp.issuer}/par", data=plain, auth=auth)
        assert pushed.status_code == 201, pushed.text
        uri = pushed.json()["request_uri"]
        resp = await person.http.get(
            f"{idp.issuer}/authorize", params={"client_id": "par-only", "request_uri": uri}
        )
        assert response_params(resp)["code"]
        # other clients are not bound by it
        assert response_params(await person.authorize())["code"]

    async def test_an_ecosystem_that_requires_pushing(
        self, idp: IdP, person: Browser, operator: dict[str, str]
    ) -> None:
        meta_url = f"{idp.issuer}/.well-known/openid-configuration"
        change = await idp.http.patch(
            f"{idp.issuer}/admin/ecosystem",
            headers=operator,
            json={"require_pushed_authorization_requests": True},
        )
        assert change.status_code == 200, change.text
        try:
            assert change.json()["require_pushed_authorization_requests"] is True
            assert (await idp.http.get(meta_url)).json()["require_pushed_authorization_requests"]
            params = response_params(await person.authorize())
            assert params["error"] == "invalid_request" and "code" not in params
            uri = await pushed_uri(idp)
            assert response_params(await authorize(person, uri))["code"]
        finally:
            back = await idp.http.patch(
                f"{idp.issuer}/admin/ecosystem",
                headers=operator,
                json={"require_pushed_authorization_requests": False},
            )
            assert back.status_code == 200
        assert response_params(await person.authorize())["code"]

    async def test_only_operators_set_it(self, idp: IdP) -> None:
        chloe = (await idp.person_tokens("chloe"))["access_token"]
        resp = await idp.http.patch(
            f"{idp.issuer}/admin/ecosystem",
            headers={"Authorization": f"Bearer {chloe}"},
            json={"require_pushed_authorization_requests": True},
        )
        assert resp.status_code == 403


class TestAcrossReplicas:
    async def test_pushed_at_one_replica_used_at_another(self, idp: IdP, person: Browser) -> None:
        other = idp.settings.model_copy(update={"port": infra.free_port(), "instance": "1"})
        async with serve_idp(create_app(other), other.port) as replica:
            resp = await push(idp, base=f"{replica}/eco/{idp.eco}")
        assert resp.status_code == 201, resp.text
        uri = resp.json()["request_uri"]
        params = response_params(await authorize(person, uri))
        assert params["code"] and params["iss"] == idp.issuer
