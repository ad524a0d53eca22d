"""Client authentication: each client only by the method it is registered for, at every
endpoint that authenticates clients (token, introspection, revocation, PAR), refused in
words; and ``client_secret_jwt`` (RFC 7523 §2.2, HS256 under the client's secret)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.identity.conftest import PORTAL_REDIRECT, IdP

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_REDIRECT = "http://127.0.0.1:8099/jwt-app"


async def _register(idp: Any, **spec: Any) -> dict[str, Any]:
    olivia = (await idp.person_tokens("olivia"))["access_token"]
    created = await idp.http.post(
        f"{idp.issuer}/admin/clients",
        headers={"Authorization": f"Bearer {olivia}"},
        json=spec,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.fixture(scope="module")
async def post_client(idp: IdP) -> tuple[str, str]:
    """A back-end registered for client_secret_post."""
    made = await _register(
        idp,
        client_id="post-app",
        name="Post app",
        partner="contoso",
        auth_method="client_secret_post",
        grant_types=["client_credentials", "authorization_code"],
        scopes=["openid", "directory:read"],
        redirect_uris=[JWT_REDIRECT],
        roles=["member"],
    )
    return made["client_id"], made["client_secret"]


@pytest.fixture(scope="module")
async def jwt_client(idp: IdP) -> tuple[str, str]:
    """A client registered for client_secret_jwt."""
    made = await _register(
        idp,
        client_id="jwt-app",
        name="JWT app",
        partner="contoso",
        auth_method="client_secret_jwt",
        grant_types=["client_credentials", "authorization_code"],
        scopes=["openid", "directory:read"],
        redirect_uris=[JWT_REDIRECT],
        roles=["member"],
    )
    assert made["auth_method"] == "client_secret_jwt" and made["client_secret"]
    return made["client_id"], made["client_secret"]


def assertion(
    client_id: str, secret: str, aud: str, alg: str = "HS256", **claims: Any
) -> dict[str, str]:
    now = int(time.time())
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    token = jwt.encode(payload, secret, alg)
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token}


def _refused(resp: httpx.Response, *words: str, status: int = 401) -> None:
    """``invalid_client``, in words; 400 for a bad assertion (RFC 6749 §5.2: 401 is a
    must only for credentials sent in the Authorization header)."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == "invalid_client"
    assert "[" not in body["error_description"], body  # words, not a list's repr
    for word in words:
        assert word in body["error_description"], body


# Each endpoint that authenticates clients, with a request its client may make there.
ENDPOINTS = {
    "token": {"grant_type": "client_credentials", "scope": "directory:read"},
    "introspect": {"token": "not-a-token"},
    "revoke": {"token": "not-a-token"},
    "par": {
        "response_type": "code",
        "redirect_uri": JWT_REDIRECT,
        "scope": "openid",
        "state": "s",
    },
}
OK = {"token": 200, "introspect": 200, "revoke": 200, "par": 201}


class TestRegisteredMethodOnly:
    @pytest.mark.parametrize("endpoint", list(ENDPOINTS))
    async def test_post_client_by_post_is_served_by_basic_refused(
        self, idp: IdP, post_client: tuple[str, str], endpoint: str
    ) -> None:
        client_id, secret = post_client
        url, form = f"{idp.issuer}/{endpoint}", ENDPOINTS[endpoint]
        ok = await idp.http.post(
            url, data={**form, "client_id": client_id, "client_secret": secret}
        )
        assert ok.status_code == OK[endpoint], ok.text
        basic = await idp.http.post(url, data=form, auth=(client_id, secret))
        _refused(
            basic,
            f"client {client_id} is registered for client_secret_post",
            "this request used client_secret_basic",
        )

    @pytest.mark.parametrize("endpoint", ["introspect", "revoke", "par"])
    async def test_basic_client_by_post_is_refused(self, idp: IdP, endpoint: str) -> None:
        form = {**ENDPOINTS[endpoint], "redirect_uri": PORTAL_REDIRECT}
        resp = await idp.http.post(
            f"{idp.issuer}/{endpoint}",
            data={**form, "client_id": "portal", "client_secret": idp.secret("portal")},
        )
        _refused(resp, "registered for client_secret_basic", "used client_secret_post")

    async def test_code_grant_refuses_the_other_secret_method(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "x",
                "client_id": "portal",
                "client_secret": idp.secret("portal"),
            },
        )
        _refused(resp, "registered for client_secret_basic")

    async def test_a_public_client_cannot_introspect(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/introspect", data={"token": "x", "client_id": "mesh-cli"}
        )
        _refused(resp, "registered for none, which this endpoint does not accept")

    async def test_a_wrong_secret_says_only_that_it_failed(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/introspect", data={"token": "x"}, auth=("portal", "wrong")
        )
        _refused(resp, "client authentication failed")


class TestClientSecretJwt:
    @pytest.mark.parametrize("endpoint", list(ENDPOINTS))
    async def test_served_at_every_endpoint(
        self, idp: IdP, jwt_client: tuple[str, str], endpoint: str
    ) -> None:
        client_id, secret = jwt_client
        for aud in (f"{idp.issuer}/token", idp.issuer):  # the token endpoint or the issuer
            creds = assertion(client_id, secret, aud)
            resp = await idp.http.post(
                f"{idp.issuer}/{endpoint}", data={**ENDPOINTS[endpoint], **creds}
            )
            assert resp.status_code == OK[endpoint], resp.text
        if endpoint == "token":
            claims = jwt.decode(resp.json()["access_token"], options={"verify_signature": False})
            assert claims["client_id"] == client_id and claims["partner"] == "contoso"

    async def test_a_replayed_assertion_is_refused(
        self, idp: IdP, jwt_client: tuple[str, str]
    ) -> None:
        creds = assertion(*jwt_client, f"{idp.issuer}/token")
        form = {**ENDPOINTS["token"], **creds}
        first = await idp.http.post(f"{idp.issuer}/token", data=form)
        assert first.status_code == 200, first.text
        again = await idp.http.post(f"{idp.issuer}/token", data=form)
        _refused(again, "used before", status=400)

    @pytest.mark.parametrize(
        ("claims", "words"),
        [
            ({"aud": "https://elsewhere.example/token"}, "aud"),
            ({"exp": int(time.time()) + 2 * 3600}, "exp is more than"),
            ({"exp": int(time.time()) - 600}, "expired"),
            ({"iss": "someone-else"}, "Issuer and Subject"),
            ({"jti": None}, "JWT ID"),
        ],
        ids=["foreign-aud", "exp-too-far", "expired", "iss-not-sub", "no-jti"],
    )
    async def test_a_bad_assertion_is_refused(
        self,
        idp: IdP,
        jwt_client: tuple[str, str],
        claims: dict[str, Any],
        words: str,
    ) -> None:
        client_id, secret = jwt_client
        claims = dict(claims)  # the parameter is shared by both engines' runs: never mutate it
        aud = claims.pop("aud", f"{idp.issuer}/token")
        creds = assertion(client_id, secret, aud, **claims)
        if claims.get("jti", "") is None:
            payload = jwt.decode(creds["client_assertion"], options={"verify_signature": False})
            del payload["jti"]
            creds["client_assertion"] = jwt.encode(payload, secret, "HS256")
        resp = await idp.http.post(f"{idp.issuer}/token", data={**ENDPOINTS["token"], **creds})
        _refused(resp, words, status=400)

    @pytest.mark.parametrize(
        ("key", "alg", "words"),
        [("other", "HS256", "does not verify"), ("secret", "HS512", "HS512")],
        ids=["another-secret", "hs512"],
    )
    @pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512
    async def test_another_key_or_algorithm_is_refused(
        self, idp: IdP, jwt_client: tuple[str, str], key: str, alg: str, words: str
    ) -> None:
        client_id, secret = jwt_client
        signing = secret if key == "secret" else "not-the-secret-" + "x" * 32
        creds = assertion(client_id, signing, f"{idp.issuer}/token", alg=alg)
        resp = await idp.http.post(f"{idp.issuer}/token", data={**ENDPOINTS["token"], **creds})
        _refused(resp, words, status=400)

    async def test_basic_with_the_same_secret_is_refused(
        self, idp: IdP, jwt_client: tuple[str, str]
    ) -> None:
        client_id, secret = jwt_client
        resp = await idp.http.post(
            f"{idp.issuer}/token", data=ENDPOINTS["token"], auth=(client_id, secret)
        )
        _refused(resp, "registered for client_secret_jwt", "used client_secret_basic")

    async def test_a_basic_client_cannot_send_an_hs256_assertion(self, idp: IdP) -> None:
        creds = assertion("portal", idp.secret("portal"), f"{idp.issuer}/token")
        resp = await idp.http.post(f"{idp.issuer}/introspect", data={"token": "x", **creds})
        _refused(resp, "registered for client_secret_basic", "used a client assertion")
