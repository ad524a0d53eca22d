"""A second factor at sign-in, through identity's real pages and endpoints: an
authenticator app (RFC 6238) with recovery codes, the policy per ecosystem and partner,
``amr``/``acr`` in ID tokens (checked by authlib's OIDC claims validation against the
provider's JWKS), step-up for ``acr_values`` and ``claims``, ``max_age``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from identity.cli.seed import PASSWORD as DEMO_PASSWORD
from identity.domain import factors, totp
from identity.domain.tokens import ACR_MFA, ACR_PWD
from identity.store import models
from mesh.db import Database
from tests.identity.conftest import PORTAL_REDIRECT, IdP
from tests.identity.factor_support import action as _action
from tests.identity.factor_support import code, recovery_codes
from tests.identity.factor_support import hidden as _hidden
from tests.identity.factor_support import totp_key as _key
from tests.support.bombs import BOMBS

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
async def olivia(idp: IdP) -> str:
    """An operator's access token (scope admin)."""
    return str((await idp.person_tokens("olivia"))["access_token"])


async def admin(idp: IdP, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return await idp.http.request(
        method, f"{idp.issuer}/admin{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


class Browser:
    """One person's browser at the provider, signing in for the portal."""

    def __init__(self, idp: IdP, http: httpx.AsyncClient, username: str) -> None:
        self.idp, self.http, self.username = idp, http, username
        self.key: bytes | None = None
        self.recovery: list[str] = []

    def url(self, location: str) -> str:
        return location if location.startswith("http") else self.idp.url + location

    async def authorize(self, **params: str) -> httpx.Response:
        query = {
            "response_type": "code",
            "client_id": "portal",
            "redirect_uri": PORTAL_REDIRECT,
            "scope": "openid profile",
            "state": "st",
            "nonce": "n-1",
            **params,
        }
        return await self.http.get(f"{self.idp.issuer}/authorize", params=query)

    async def password(self, login_location: str, password: str = PASSWORD) -> httpx.Response:
        page = await self.http.get(self.url(login_location))
        form = {**_hidden(page.text), "username": self.username, "password": password}
        return await self.http.post(f"{self.idp.issuer}/login", data=form)

    async def submit_code(self, page_location: str, value: str) -> httpx.Response:
        page = await self.http.get(self.url(page_location))
        assert page.status_code == 200, page.text[-300:]
        if "totp-key" in page.text:
            self.key = _key(page.text)
        fields = {**_hidden(page.text), "code": value}
        return await self.http.post(self.url(_action(page.text)), data=fields)

    async def enrol(self, page_location: str) -> httpx.Response:
        """Read the key from the enrolment page and confirm it with the app's code."""
        page = await self.http.get(self.url(page_location))
        assert page.status_code == 200 and "otpauth://totp/" in page.text, page.text[-300:]
        self.key = _key(page.text)
        fields = {**_hidden(page.text), "code": code(self.key)}
        done = await self.http.post(self.url(_action(page.text)), data=fields)
        assert done.status_code == 200, done.text[-300:]
        self.recovery = recovery_codes(done.text)
        return done

    async def to_client(self, resp: httpx.Response) -> dict[str, str]:
        """Follow the provider's redirects until the one to the portal."""
        for _ in range(6):
            location = resp.headers.get("location", "")
            if location.startswith(PORTAL_REDIRECT):
                return dict(parse_qsl(urlsplit(location).query))
            assert resp.status_code in (302, 303), (resp.status_code, resp.text[-300:])
            resp = await self.http.get(self.url(location))
        raise AssertionError("no answer to the client")


async def redeem(idp: IdP, params: dict[str, str]) -> dict[str, Any]:
    assert "code" in params, params
    resp = await idp.http.post(
        f"{idp.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": PORTAL_REDIRECT,
        },
        auth=("portal", idp.secret("portal")),
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def _jwks(idp: IdP) -> KeySet:
    return KeySet.import_key_set((await idp.http.get(f"{idp.issuer}/jwks")).json())


async def verified_id_token(idp: IdP, tokens: dict[str, Any], acr: str) -> dict[str, Any]:
    """The ID token as a relying party checks it (joserfc: the signature against the
    provider's JWKS; iss, aud, nonce, exp, and an essential acr of the value asked)."""
    jwks = await _jwks(idp)
    token = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": idp.issuer},
        aud={"essential": True, "value": "portal"},
        nonce={"essential": True, "value": "n-1"},
        acr={"essential": True, "value": acr},
        amr={"essential": True},
        auth_time={"essential": True},
    ).validate(token.claims)
    return dict(token.claims)


@pytest.fixture
async def person(idp: IdP, olivia: str) -> AsyncIterator[Browser]:
    """A new person of contoso's with a password, and a fresh browser of theirs."""
    name = f"mfa-{uuid.uuid4().hex[:8]}"
    body = {"username": name, "partner": "contoso", "name": "Mia Factor", "password": PASSWORD}
    assert (await admin(idp, olivia, "POST", "/people", body)).status_code == 201
    async with httpx.AsyncClient(timeout=10) as http:
        yield Browser(idp, http, name)


@pytest.fixture
async def enrolled(person: Browser) -> Browser:
    """The person, with an authenticator app set up from the account page."""
    resp = await person.authorize()
    resp = await person.password(resp.headers["location"])
    assert resp.status_code == 303
    await person.to_client(resp)
    await person.enrol(f"/eco/{person.idp.eco}/login/enrol?return_to=/eco/acme/account")
    account = await person.http.get(f"{person.idp.issuer}/account")
    assert "Authenticator app: on (10 recovery codes left)" in account.text
    person.http.cookies.clear()  # signed out of this browser
    return person


@pytest.fixture
async def partner(idp: IdP, olivia: str) -> str:
    """A new company of the ecosystem."""
    slug = f"co-{uuid.uuid4().hex[:6]}"
    resp = await admin(idp, olivia, "POST", "/partners", {"slug": slug, "name": "Co"})
    assert resp.status_code == 201
    return slug


class TestRfc6238:
    # RFC 6238 Appendix B: the SHA-1 seed, 8 digits
    SEED = b"12345678901234567890"

    @pytest.mark.parametrize(
        ("at", "expected"),
        [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ],
    )
    def test_appendix_b_vectors(self, at: int, expected: str) -> None:
        assert totp.totp(self.SEED, at, digits=8) == expected

    def test_sha256_vector(self) -> None:
        seed = b"12345678901234567890123456789012"
        assert totp.totp(seed, 59, digits=8, algorithm="sha256") == "46119246"

    def test_window_reuse_and_expiry(self) -> None:
        key, now = self.SEED, 1111111111.0
        step = totp.step_at(now)
        assert totp.matching_step(key, totp.hotp(key, step), None, now) == step
        assert totp.matching_step(key, totp.hotp(key, step - 1), None, now) == step - 1
        assert totp.matching_step(key, totp.hotp(key, step + 1), None, now) == step + 1
        assert totp.matching_step(key, totp.hotp(key, step - 2), None, now) == -1  # expired
        assert totp.matching_step(key, totp.hotp(key, step), step, now) == -1  # used
        assert totp.matching_step(key, totp.hotp(key, step - 1), step, now) == -1  # older
        for junk in ("", "12345", "1234567", "12345a", "١٢٣٤٥٦"):
            assert totp.matching_step(key, junk, None, now) == -1


class TestHostileInput:
    async def test_a_claims_depth_bomb_is_invalid_request(self, idp: IdP, person: Browser) -> None:
        resp = await person.authorize(claims=BOMBS["arrays"], prompt="none")
        params = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
        assert params["error"] == "invalid_request" and params["iss"] == idp.issuer

    @pytest.mark.parametrize(
        "cookie", ["", "v1.", "v1.AAAA", "not-base64-%!*()", "v1." + "A" * 5000, "v2.x.y"]
    )
    async def test_a_forged_pending_cookie_is_no_sign_in(
        self, idp: IdP, person: Browser, cookie: str
    ) -> None:
        person.http.cookies.set("pm_pending", cookie, path=f"/eco/{idp.eco}/")
        for page in ("second-factor", "enrol"):
            got = await person.http.get(f"{idp.issuer}/login/{page}")
            assert got.status_code == 303 and got.headers["location"].endswith("/login")

    @pytest.mark.parametrize("value", ["9" * 5000, "١٢٣٤٥٦", "12 34 56\x00", "ab-cd", "💥" * 40])
    async def test_odd_codes_are_wrong_codes(self, idp: IdP, enrolled: Browser, value: str) -> None:
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        wrong = await enrolled.submit_code(resp.headers["location"], value)
        assert wrong.status_code == 401


class TestRequestedAcr:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ({}, None),
            ({"acr_values": f"{ACR_PWD} {ACR_MFA}"}, ACR_MFA),
            ({"acr_values": "urn:other:gold"}, None),
            ({"acr_values": ACR_PWD}, ACR_PWD),
            ({"claims": json.dumps({"id_token": {"acr": {"values": [ACR_MFA]}}})}, ACR_MFA),
            ({"claims": json.dumps({"id_token": {"acr": {"value": ACR_MFA}}})}, ACR_MFA),
            ({"claims": json.dumps({"id_token": {"acr": {"values": ACR_MFA}}})}, None),
            ({"claims": json.dumps({"userinfo": {"acr": {"value": ACR_MFA}}})}, None),
            ({"claims": json.dumps({"id_token": None})}, None),
        ],
    )
    def test_what_a_request_asks_for(self, data: dict[str, str], expected: str | None) -> None:
        assert factors.requested_acr(data) == expected

    @pytest.mark.parametrize("raw", ["{", "[1]", '"mfa"', "null", *BOMBS.values()])
    def test_a_claims_parameter_that_is_no_object_is_refused(self, raw: str) -> None:
        with pytest.raises(factors.BadClaims):
            factors.requested_acr({"claims": raw})


class TestSignInWithApp:
    async def test_password_then_code_gives_mfa_tokens(self, idp: IdP, enrolled: Browser) -> None:
        assert enrolled.key is not None
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        assert resp.status_code == 303 and "/login/second-factor" in resp.headers["location"]
        assert "pm_session" not in resp.cookies and "pm_pending" in resp.cookies
        # the half-done sign-in is no session: the authorization request asks to sign in
        pending_only = await enrolled.authorize()
        assert "/login" in pending_only.headers["location"]
        done = await enrolled.submit_code(resp.headers["location"], code(enrolled.key, 1))
        tokens = await redeem(idp, await enrolled.to_client(done))
        claims = await verified_id_token(idp, tokens, ACR_MFA)
        assert claims["amr"] == ["mfa", "otp", "pwd"] and claims["acr"] == ACR_MFA
        refreshed = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=("portal", idp.secret("portal")),
        )
        assert refreshed.status_code == 200, refreshed.text
        again = jwt.decode(refreshed.json()["id_token"], await _jwks(idp)).claims
        assert again["amr"] == claims["amr"] and again["acr"] == ACR_MFA

    async def test_the_key_is_sealed_and_recovery_codes_hashed_at_rest(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        stored = await _stored_factor(idp, enrolled.username)
        secret_enc, hashes = stored
        assert secret_enc.startswith("v1.") and totp.b32(enrolled.key) not in secret_enc
        assert enrolled.key not in base64.urlsafe_b64decode(secret_enc[3:])
        assert len(hashes) == 10 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
        plain = {c.replace("-", "") for c in enrolled.recovery} | set(enrolled.recovery)
        assert not plain & set(hashes)

    async def test_the_enrolment_page_shows_a_qr_code_under_the_csp(
        self, idp: IdP, person: Browser
    ) -> None:
        resp = await person.password((await person.authorize()).headers["location"])
        await person.to_client(resp)
        page = await person.http.get(f"{idp.issuer}/login/enrol")
        assert page.status_code == 200
        svg = re.search(r'<div class="qr" id="totp-qr">(<svg .*?</svg>)</div>', page.text, re.S)
        assert svg and "<script" not in svg.group(1) and "style=" not in svg.group(1)
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        uri = unescape(re.findall(r'id="totp-uri">([^<]+)<', page.text)[0])
        assert uri.startswith("otpauth://totp/") and f"secret={totp.b32(_key(page.text))}" in uri
        # the same enrolment until confirmed: a reload shows the same key
        assert _key((await person.http.get(f"{idp.issuer}/login/enrol")).text) == _key(page.text)

    async def test_wrong_reused_and_expired_codes_are_refused(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        page = resp.headers["location"]
        wrong = str((int(code(enrolled.key)) + 1) % 1_000_000).zfill(6)
        for bad in (wrong, code(enrolled.key, -2), code(enrolled.key, 0)):
            # the current step was spent confirming the enrolment: reuse
            refused = await enrolled.submit_code(page, bad)
            assert refused.status_code == 401 and "not right" in refused.text
            assert "pm_session" not in refused.cookies
        ok = await enrolled.submit_code(page, code(enrolled.key, 1))
        assert ok.status_code == 303
        again = await enrolled.http.get(f"{idp.issuer}/account")
        assert again.status_code == 200
        # the same code again, in another sign-in: refused
        enrolled.http.cookies.clear()
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        reused = await enrolled.submit_code(resp.headers["location"], code(enrolled.key, 1))
        assert reused.status_code == 401

    async def test_one_code_sent_at_once_from_many_browsers_signs_in_once(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        pages: list[tuple[httpx.AsyncClient, str, dict[str, str]]] = []
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(4):
                http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
                other = Browser(idp, http, enrolled.username)
                resp = await other.password((await other.authorize()).headers["location"])
                page = await http.get(other.url(resp.headers["location"]))
                pages.append((http, other.url(_action(page.text)), _hidden(page.text)))
            value = code(enrolled.key, 1)
            answers = await asyncio.gather(
                *(http.post(url, data={**fields, "code": value}) for http, url, fields in pages)
            )
        assert sorted(a.status_code for a in answers) == [303, 401, 401, 401]

    async def test_a_recovery_code_works_once(self, idp: IdP, enrolled: Browser) -> None:
        assert len(enrolled.recovery) == 10 and len(set(enrolled.recovery)) == 10
        spare = enrolled.recovery[0]
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        done = await enrolled.submit_code(resp.headers["location"], spare.upper())
        tokens = await redeem(idp, await enrolled.to_client(done))
        assert (await verified_id_token(idp, tokens, ACR_MFA))["acr"] == ACR_MFA
        enrolled.http.cookies.clear()
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        assert (await enrolled.submit_code(resp.headers["location"], spare)).status_code == 401

    async def test_wrong_codes_lock_the_account_like_passwords(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        page = resp.headers["location"]
        for _ in range(idp.settings.login_max_failures_account):
            assert (await enrolled.submit_code(page, "000000")).status_code in (401, 429)
        locked = await enrolled.submit_code(page, code(enrolled.key, 1))
        assert locked.status_code == 429
        # a right password does not unlock it either
        again = await enrolled.password(f"/eco/{idp.eco}/login")
        assert again.status_code == 429

    async def test_the_code_form_is_csrf_protected(self, idp: IdP, enrolled: Browser) -> None:
        assert enrolled.key is not None
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        forged = await enrolled.http.post(
            enrolled.url(resp.headers["location"]),
            data={"csrf_token": "forged", "code": code(enrolled.key, 1)},
        )
        assert forged.status_code == 403 and "pm_session" not in forged.cookies

    async def test_a_sealed_value_of_another_kind_is_no_pending_sign_in(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        forged = idp.rt.sealer.seal(json.dumps({"eco": "acme"}).encode(), b"other")
        enrolled.http.cookies.set("pm_pending", forged, path=f"/eco/{idp.eco}/")
        page = await enrolled.http.get(f"{idp.issuer}/login/second-factor")
        assert page.status_code == 303 and page.headers["location"].endswith("/login")

    async def test_turning_it_off_needs_a_code_or_the_password(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        await enrolled.submit_code(resp.headers["location"], code(enrolled.key, 1))
        account = await enrolled.http.get(f"{idp.issuer}/account")
        fields = _hidden(account.text)
        off = f"{idp.issuer}/account/totp/disable"
        refused = await enrolled.http.post(off, data={**fields, "proof": "not-my-password"})
        assert refused.status_code == 401 and "Authenticator app: on" in refused.text
        done = await enrolled.http.post(off, data={**fields, "proof": PASSWORD})
        assert done.status_code == 303
        after = await enrolled.http.get(f"{idp.issuer}/account")
        assert "Authenticator app: off" in after.text
        enrolled.http.cookies.clear()
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        tokens = await redeem(idp, await enrolled.to_client(resp))
        assert (await verified_id_token(idp, tokens, ACR_PWD))["amr"] == ["pwd"]


class TestRecoveryCodesAndPolicyOnTheAccountPage:
    async def test_new_recovery_codes_replace_the_old_ones(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        old = enrolled.recovery
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        await enrolled.to_client(await enrolled.submit_code(resp.headers["location"], old[0]))
        fields = _hidden((await enrolled.http.get(f"{idp.issuer}/account")).text)
        renew = f"{idp.issuer}/account/recovery-codes"
        refused = await enrolled.http.post(renew, data={**fields, "proof": "123456"})
        assert refused.status_code == 401
        forged = await enrolled.http.post(renew, data={"csrf_token": "x", "proof": PASSWORD})
        assert forged.status_code == 403
        page = await enrolled.http.post(renew, data={**fields, "proof": PASSWORD})
        assert page.status_code == 200
        new = recovery_codes(page.text)
        assert len(new) == 10 and not set(new) & set(old)
        enrolled.http.cookies.clear()
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        assert (await enrolled.submit_code(resp.headers["location"], old[1])).status_code == 401
        done = await enrolled.submit_code(resp.headers["location"], new[0])
        assert done.status_code == 303

    async def test_it_stays_on_while_the_policy_requires_it(
        self, idp: IdP, olivia: str, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        await enrolled.to_client(
            await enrolled.submit_code(resp.headers["location"], enrolled.recovery[0])
        )
        fields = _hidden((await enrolled.http.get(f"{idp.issuer}/account")).text)
        path = "/partners/contoso/second-factor"
        assert (await admin(idp, olivia, "PUT", path, {"second_factor": "required"})).is_success
        try:
            off = await enrolled.http.post(
                f"{idp.issuer}/account/totp/disable", data={**fields, "proof": PASSWORD}
            )
        finally:
            await admin(idp, olivia, "PUT", path, {"second_factor": None})
        assert off.status_code == 409 and "Authenticator app: on" in off.text


class TestPolicy:
    async def test_required_sends_a_person_without_a_factor_to_enrol(
        self, idp: IdP, olivia: str, person: Browser, partner: str
    ) -> None:
        body = {
            "username": person.username + "r",
            "partner": partner,
            "name": "R",
            "password": PASSWORD,
        }
        assert (await admin(idp, olivia, "POST", "/people", body)).status_code == 201
        person.username += "r"
        put = await admin(
            idp, olivia, "PUT", f"/partners/{partner}/second-factor", {"second_factor": "required"}
        )
        assert put.status_code == 200 and put.json()["partners"][partner] == "required"
        resp = await person.password((await person.authorize()).headers["location"])
        assert resp.status_code == 303 and "/login/enrol" in resp.headers["location"]
        assert "pm_session" not in resp.cookies
        done = await person.enrol(resp.headers["location"])
        assert "pm_session" in done.cookies and len(person.recovery) == 10
        found = re.search(r'href="([^"]+)" id="continue"', done.text)
        assert found, done.text[-300:]
        next_url = unescape(found.group(1))
        tokens = await redeem(
            idp, await person.to_client(await person.http.get(person.url(next_url)))
        )
        assert (await verified_id_token(idp, tokens, ACR_MFA))["acr"] == ACR_MFA

    async def test_a_partner_cannot_loosen_the_ecosystem(
        self, idp: IdP, olivia: str, partner: str
    ) -> None:
        assert (
            await admin(idp, olivia, "PUT", "/second-factor", {"second_factor": "required"})
        ).status_code == 200
        try:
            looser = await admin(
                idp,
                olivia,
                "PUT",
                f"/partners/{partner}/second-factor",
                {"second_factor": "optional"},
            )
            assert looser.status_code == 422
            assert looser.headers["content-type"].startswith("application/problem+json")
            stricter = await admin(
                idp,
                olivia,
                "PUT",
                f"/partners/{partner}/second-factor",
                {"second_factor": "passkeys_only"},
            )
            assert stricter.status_code == 200
            bad = await admin(idp, olivia, "PUT", "/second-factor", {"second_factor": "maybe"})
            assert bad.status_code == 422
        finally:
            await admin(idp, olivia, "PUT", "/second-factor", {"second_factor": "optional"})
        got = await admin(idp, olivia, "GET", "/second-factor")
        assert got.json()["second_factor"] == "optional"
        assert got.json()["partners"][partner] == "passkeys_only"

    async def test_passkeys_only_refuses_a_password(
        self, idp: IdP, olivia: str, person: Browser, partner: str
    ) -> None:
        body = {
            "username": person.username + "p",
            "partner": partner,
            "name": "P",
            "password": PASSWORD,
        }
        assert (await admin(idp, olivia, "POST", "/people", body)).status_code == 201
        person.username += "p"
        await admin(
            idp,
            olivia,
            "PUT",
            f"/partners/{partner}/second-factor",
            {"second_factor": "passkeys_only"},
        )
        login = (await person.authorize()).headers["location"]
        resp = await person.password(login)
        assert resp.status_code == 403 and "passkey" in resp.text
        assert "pm_session" not in resp.cookies and "pm_pending" not in resp.cookies
        # a wrong password gets the same answer: no telling whether the password was right
        wrong = await person.password(login, "not-the-password-at-all")
        assert wrong.status_code == 403 and "passkey" in wrong.text
        assert wrong.text.replace(_hidden(wrong.text)["csrf_token"], "") == resp.text.replace(
            _hidden(resp.text)["csrf_token"], ""
        )

    async def test_a_stricter_policy_reaches_existing_sessions(
        self, idp: IdP, olivia: str, person: Browser, partner: str
    ) -> None:
        body = {
            "username": person.username + "s",
            "partner": partner,
            "name": "S",
            "password": PASSWORD,
        }
        assert (await admin(idp, olivia, "POST", "/people", body)).status_code == 201
        person.username += "s"
        resp = await person.password((await person.authorize()).headers["location"])
        await person.to_client(resp)  # signed in with a password alone
        path = f"/partners/{partner}/second-factor"
        await admin(idp, olivia, "PUT", path, {"second_factor": "required"})
        enrol = await person.authorize()
        assert "/login/enrol" in enrol.headers["location"]
        await admin(idp, olivia, "PUT", path, {"second_factor": "passkeys_only"})
        login = await person.authorize()
        assert login.headers["location"].startswith(f"/eco/{idp.eco}/login?")

    async def test_operators_set_it_on_the_account_page_and_no_one_else(
        self, idp: IdP, olivia: str, person: Browser, partner: str
    ) -> None:
        await person.to_client(
            await person.password((await person.authorize()).headers["location"])
        )
        page = await person.http.get(f"{idp.issuer}/account")
        assert "second-factor-policy" not in page.text  # a member sees no policy form
        form = {**_hidden(page.text), "scope": partner, "policy": "required"}
        denied = await person.http.post(f"{idp.issuer}/account/second-factor-policy", data=form)
        assert denied.status_code == 403
        got = await admin(idp, olivia, "GET", "/second-factor")
        assert partner not in got.json()["partners"]
        async with httpx.AsyncClient(timeout=10) as http:
            operator = Browser(idp, http, "olivia")
            resp = await operator.password(
                (await operator.authorize()).headers["location"], DEMO_PASSWORD
            )
            await operator.to_client(resp)
            page = await http.get(f"{idp.issuer}/account")
            assert "second-factor-policy" in page.text
            form = {**_hidden(page.text), "scope": partner, "policy": "required"}
            forged = await http.post(
                f"{idp.issuer}/account/second-factor-policy", data={**form, "csrf_token": "x"}
            )
            assert forged.status_code == 403
            done = await http.post(f"{idp.issuer}/account/second-factor-policy", data=form)
            assert done.status_code == 303
        got = await admin(idp, olivia, "GET", "/second-factor")
        assert got.json()["partners"][partner] == "required"

    async def test_ecosystem_wide_passkeys_only_answers_every_username_alike(
        self, idp: IdP, olivia: str, person: Browser
    ) -> None:
        put = await admin(idp, olivia, "PUT", "/second-factor", {"second_factor": "passkeys_only"})
        assert put.status_code == 200
        try:
            login = f"/eco/{idp.eco}/login"
            known = await person.password(login)
            person.username = f"nobody-{uuid.uuid4().hex[:6]}"
            unknown = await person.password(login)
        finally:
            await admin(idp, olivia, "PUT", "/second-factor", {"second_factor": "optional"})
        assert known.status_code == unknown.status_code == 403
        assert "passkey" in known.text and "passkey" in unknown.text

    async def test_only_operators_set_the_policy(self, idp: IdP, partner: str) -> None:
        carlos = str((await idp.person_tokens("carlos"))["access_token"])  # a partner admin
        for method, path in (
            ("PUT", "/second-factor"),
            ("PUT", f"/partners/{partner}/second-factor"),
            ("GET", "/second-factor"),
        ):
            resp = await admin(idp, carlos, method, path, {"second_factor": "optional"})
            assert resp.status_code == 403, resp.text
            anon = await idp.http.request(
                method, f"{idp.issuer}/admin{path}", json={"second_factor": "optional"}
            )
            assert anon.status_code == 401


class TestStepUp:
    async def test_acr_values_asks_a_password_session_for_the_code(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        await self._password_only_session(idp, enrolled)
        resp = await enrolled.authorize(acr_values=ACR_MFA)
        assert "/login/second-factor" in resp.headers["location"]
        silent = await enrolled.authorize(acr_values=ACR_MFA, prompt="none")
        assert dict(parse_qsl(urlsplit(silent.headers["location"]).query))["error"] == (
            "interaction_required"
        )
        done = await enrolled.submit_code(resp.headers["location"], code(enrolled.key, 1))
        tokens = await redeem(idp, await enrolled.to_client(done))
        assert (await verified_id_token(idp, tokens, ACR_MFA))["amr"] == ["mfa", "otp", "pwd"]

    async def test_an_essential_acr_claim_asks_too(self, idp: IdP, enrolled: Browser) -> None:
        await self._password_only_session(idp, enrolled)
        claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [ACR_MFA]}}})
        resp = await enrolled.authorize(claims=claims)
        assert "/login/second-factor" in resp.headers["location"]
        broken = await enrolled.authorize(claims="{not json")
        assert dict(parse_qsl(urlsplit(broken.headers["location"]).query))["error"] == (
            "invalid_request"
        )

    async def test_max_age_asks_for_password_and_code_again(
        self, idp: IdP, enrolled: Browser
    ) -> None:
        assert enrolled.key is not None
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        spare = enrolled.recovery[1]
        first = await redeem(
            idp,
            await enrolled.to_client(await enrolled.submit_code(resp.headers["location"], spare)),
        )
        before = (await verified_id_token(idp, first, ACR_MFA))["auth_time"]
        again = await enrolled.authorize(max_age="0")
        assert again.headers["location"].startswith(f"/eco/{idp.eco}/login?")
        resp = await enrolled.password(again.headers["location"])
        assert "/login/second-factor" in resp.headers["location"]
        done = await enrolled.submit_code(resp.headers["location"], code(enrolled.key, 1))
        second = await redeem(idp, await enrolled.to_client(done))
        assert (await verified_id_token(idp, second, ACR_MFA))["auth_time"] >= before
        # the sign-in counted once: the same request again asks again
        replay = await enrolled.authorize(max_age="0")
        assert replay.headers["location"].startswith(f"/eco/{idp.eco}/login?")

    async def _password_only_session(self, idp: IdP, enrolled: Browser) -> None:
        """A session of a password alone, as one made before the app was set up (signed
        in with a recovery code, then marked ``pwd`` only in the database)."""
        resp = await enrolled.password((await enrolled.authorize()).headers["location"])
        done = await enrolled.submit_code(resp.headers["location"], enrolled.recovery[2])
        await enrolled.to_client(done)
        await _downgrade_sessions(idp, enrolled.username)


async def _stored_factor(idp: IdP, username: str) -> tuple[str, list[str]]:
    """The person's sealed key and recovery-code hashes, as the database holds them."""
    db = Database(idp.settings.database_url, models.metadata)
    try:
        async with db.transaction() as s:
            pid = (
                await s.execute(select(models.Person.id).where(models.Person.username == username))
            ).scalar_one()
            row = await s.get(models.TotpFactor, pid)
            assert row is not None
            hashes = await s.scalars(
                select(models.RecoveryCode.code_hash).where(models.RecoveryCode.person_id == pid)
            )
            return row.secret_enc, list(hashes)
    finally:
        await db.dispose()


async def _downgrade_sessions(idp: IdP, username: str) -> None:
    """Make the person's sessions look like password-only ones (as those made before the
    app was set up)."""
    db = Database(idp.settings.database_url, models.metadata)
    try:
        async with db.transaction() as s:
            pid = (
                await s.execute(select(models.Person.id).where(models.Person.username == username))
            ).scalar_one()
            await s.execute(
                update(models.LoginSession)
                .where(models.LoginSession.person_id == pid)
                .values(amr=["pwd"])
            )
    finally:
        await db.dispose()
