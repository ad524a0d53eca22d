"""Passkeys and the second-factor policy together, through identity's real pages: a
passkey as the second step after a password (satisfying ``required``), ``passkeys_only``
admitting a passkey sign-in, the ``acr``/``amr`` of a passkey sign-in with and without
user verification in verified ID tokens, step-up by a passkey, and the code page
offering a passkey beside the app's code."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from identity.domain.tokens import ACR_MFA, ACR_PWD
from identity.store import models
from identity.store.transaction import Tx
from tests.identity.conftest import IdP
from tests.identity.factor_support import code
from tests.identity.test_passkeys import passkey_second_step, register, sign_in_options
from tests.identity.test_second_factor import (
    PASSWORD,
    Browser,
    admin,
    redeem,
    verified_id_token,
)
from tests.support.authenticator import SoftAuthenticator, b64url


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    return {"login_max_failures_address": 1000}  # the lockout is counted per account below


@pytest.fixture(scope="module")
async def olivia(idp: IdP) -> str:
    """An operator's access token (scope admin)."""
    return str((await idp.person_tokens("olivia"))["access_token"])


@pytest.fixture
async def partner(idp: IdP, olivia: str) -> str:
    """A new company of the ecosystem (its policy set per test)."""
    slug = f"pk-{uuid.uuid4().hex[:6]}"
    assert (await admin(idp, olivia, "POST", "/partners", {"slug": slug, "name": "Pk"})).is_success
    return slug


@pytest.fixture
async def person(idp: IdP, olivia: str, partner: str) -> AsyncIterator[Browser]:
    """A new person of that company with a password, and their browser."""
    name = f"pk-{uuid.uuid4().hex[:8]}"
    body = {"username": name, "partner": partner, "name": "Pat Key", "password": PASSWORD}
    assert (await admin(idp, olivia, "POST", "/people", body)).status_code == 201
    async with httpx.AsyncClient(base_url=idp.url, timeout=10) as http:
        yield Browser(idp, http, name)


async def with_passkey(person: Browser, *auths: SoftAuthenticator) -> None:
    """The person (no factor yet, policy optional) signs in with the password, adds a
    passkey on the account page from each authenticator, and signs out of this browser."""
    resp = await person.password((await person.authorize()).headers["location"])
    await person.to_client(resp)
    for auth in auths:
        assert (await register(person.http, auth, "Laptop")).status_code == 303
    person.http.cookies.clear()


async def set_policy(idp: IdP, olivia: str, partner: str, policy: str) -> None:
    body = {"second_factor": policy}
    put = await admin(idp, olivia, "PUT", f"/partners/{partner}/second-factor", body)
    assert put.status_code == 200, put.text


async def passkey_sign_in(person: Browser, auth: SoftAuthenticator) -> httpx.Response:
    """ "Sign in with a passkey" on the sign-in page an authorization request led to."""
    login = (await person.authorize()).headers["location"]
    return_to = parse_qs(urlsplit(login).query)["return_to"][0]
    csrf, options = await sign_in_options(person.http)
    form = {"csrf_token": csrf, "credential": json.dumps(auth.get(options)), "return_to": return_to}
    return await person.http.post(f"/eco/{person.idp.eco}/login/passkey", data=form)


async def failures(idp: IdP, username: str) -> int:
    def read(tx: Tx) -> int:
        key = f"acct:{idp.eco}:{username}"
        row = tx.s.scalar(select(models.LoginThrottle).where(models.LoginThrottle.key == key))
        return row.failures if row else 0

    found: int = await idp.rt.tx(read)
    return found


class TestPasskeyAfterPassword:
    async def test_satisfies_required_and_a_wrong_one_counts(
        self, idp: IdP, olivia: str, partner: str, person: Browser
    ) -> None:
        auth = SoftAuthenticator(idp.url, user_verified=False)  # a plain security key
        await with_passkey(person, auth)
        await set_policy(idp, olivia, partner, "required")
        resp = await person.password((await person.authorize()).headers["location"])
        step = resp.headers["location"]
        assert resp.status_code == 303 and step.startswith(f"/eco/{idp.eco}/login/second-factor")
        assert "pm_session" not in resp.cookies
        page = await person.http.get(step)
        assert 'id="passkey-second-factor"' in page.text
        assert 'name="code"' not in page.text  # no app: the passkey, or set one up
        assert 'id="enrol-instead"' in page.text
        # a passkey that is not the person's is refused, counted against the account
        stranger = SoftAuthenticator(idp.url)
        stranger.create(
            {"rp": {"id": "127.0.0.1"}, "user": {"id": b64url(b"x" * 32)}, "challenge": "AA"}
        )
        wrong = await passkey_second_step(
            person.http, stranger, step, credential=next(iter(stranger.credentials))
        )
        assert wrong.status_code == 401 and "pm_session" not in wrong.cookies
        assert await failures(idp, person.username) == 1
        # the person's own passkey completes the sign-in: password + key = two factors
        done = await passkey_second_step(person.http, auth, step)
        assert done.status_code == 303 and "pm_session" in done.cookies
        token = await verified_id_token(
            idp, await redeem(idp, await person.to_client(done)), ACR_MFA
        )
        assert token["amr"] == ["hwk", "mfa", "pwd"]
        assert await failures(idp, person.username) == 0  # a complete sign-in clears them

    async def test_without_the_second_step_nothing_is_proved(
        self, idp: IdP, person: Browser
    ) -> None:
        auth = SoftAuthenticator(idp.url)
        await with_passkey(person, auth)  # optional: still asked, having a factor
        resp = await person.password((await person.authorize()).headers["location"])
        assert "/login/second-factor" in resp.headers["location"]
        # the options need the pending sign-in (or a session): a stranger's browser gets 401
        async with httpx.AsyncClient(base_url=idp.url) as other:
            page = await other.get(f"/eco/{idp.eco}/login")
            csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            resp = await other.post(
                f"/eco/{idp.eco}/login/second-factor/passkey-options",
                headers={"X-CSRF-Token": csrf},
            )
            assert resp.status_code == 401
            assert resp.headers["content-type"].startswith("application/problem+json")
        forged = await person.http.post(
            f"/eco/{idp.eco}/login/second-factor/passkey-options",
            headers={"X-CSRF-Token": "forged"},
        )
        assert forged.status_code == 403

    async def test_a_locked_account_proves_nothing_with_a_passkey(
        self, idp: IdP, person: Browser
    ) -> None:
        auth = SoftAuthenticator(idp.url)
        await with_passkey(person, auth)
        resp = await person.password((await person.authorize()).headers["location"])
        key = f"acct:{idp.eco}:{person.username}"

        def lock(tx: Tx) -> None:
            now = datetime.now(UTC)
            until = now + timedelta(minutes=5)
            tx.s.add(
                models.LoginThrottle(key=key, failures=99, window_start=now, locked_until=until)
            )

        await idp.rt.tx(lock)
        locked = await passkey_second_step(person.http, auth, resp.headers["location"])
        assert locked.status_code == 429 and "pm_session" not in locked.cookies


class TestPasskeySignInUnderPolicy:
    async def test_passkeys_only_admits_a_passkey_and_refuses_the_password(
        self, idp: IdP, olivia: str, partner: str, person: Browser
    ) -> None:
        auth = SoftAuthenticator(idp.url)
        await with_passkey(person, auth)
        await set_policy(idp, olivia, partner, "passkeys_only")
        refused = await person.password((await person.authorize()).headers["location"])
        assert refused.status_code == 403 and "pm_session" not in refused.cookies
        resp = await passkey_sign_in(person, auth)
        assert resp.status_code == 303 and "pm_session" in resp.cookies
        tokens = await redeem(idp, await person.to_client(resp))
        token = await verified_id_token(idp, tokens, ACR_MFA)
        assert token["amr"] == ["hwk", "user"]  # user verified: two factors (RFC 8176)
        # the only way in stays: the last passkey is not removed under passkeys_only
        account = await person.http.get(f"/eco/{idp.eco}/account")
        removal = re.search(r'action="(/eco/[^"]+/passkeys/[^"]+/remove)"', account.text)
        assert removal is not None
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', account.text)
        assert csrf is not None
        kept = await person.http.post(removal.group(1), data={"csrf_token": csrf.group(1)})
        assert kept.status_code == 409 and "add another passkey first" in kept.text
        assert "Laptop" in (await person.http.get(f"/eco/{idp.eco}/account")).text

    async def test_without_user_verification_one_factor(
        self, idp: IdP, olivia: str, partner: str, person: Browser
    ) -> None:
        auth = SoftAuthenticator(idp.url, user_verified=False)
        await with_passkey(person, auth)
        await set_policy(idp, olivia, partner, "passkeys_only")
        resp = await passkey_sign_in(person, auth)
        tokens = await redeem(idp, await person.to_client(resp))
        token = await verified_id_token(idp, tokens, ACR_PWD)
        assert token["amr"] == ["hwk"]
        # a client asking for mfa sends this session to the second step
        up = await person.authorize(acr_values=ACR_MFA)
        assert up.headers["location"].startswith(f"/eco/{idp.eco}/login/second-factor")
        # the same unverified key again adds no factor: refused, the session stays as it was
        weak = await passkey_second_step(person.http, auth, up.headers["location"])
        assert weak.status_code == 401 and "did not verify you" in weak.text
        again = await person.authorize(acr_values=ACR_MFA)
        assert "/login/second-factor" in again.headers["location"]

    async def test_required_a_verified_passkey_alone_an_unverified_one_needs_more(
        self, idp: IdP, olivia: str, partner: str, person: Browser
    ) -> None:
        verified = SoftAuthenticator(idp.url)
        key = SoftAuthenticator(idp.url, user_verified=False)
        await with_passkey(person, verified, key)
        await set_policy(idp, olivia, partner, "required")
        resp = await passkey_sign_in(person, verified)
        assert "pm_session" in resp.cookies
        token = await verified_id_token(
            idp, await redeem(idp, await person.to_client(resp)), ACR_MFA
        )
        assert token["amr"] == ["hwk", "user"]
        person.http.cookies.clear()
        half = await passkey_sign_in(person, key)
        assert half.status_code == 303 and "pm_session" not in half.cookies
        assert half.headers["location"] == f"/eco/{idp.eco}/login/second-factor"
        done = await passkey_second_step(person.http, verified, half.headers["location"])
        assert "pm_session" in done.cookies
        token = await verified_id_token(
            idp, await redeem(idp, await person.to_client(done)), ACR_MFA
        )
        assert token["amr"] == ["hwk", "mfa", "user"]

    async def test_step_up_by_a_passkey_and_a_verified_session_needs_none(
        self, idp: IdP, person: Browser
    ) -> None:
        auth = SoftAuthenticator(idp.url)
        await with_passkey(person, auth)
        # a verified passkey session already meets acr mfa: no second step
        resp = await passkey_sign_in(person, auth)
        await person.to_client(resp)
        direct = await person.authorize(acr_values=ACR_MFA)
        assert direct.headers["location"].startswith("http"), direct.headers["location"]
        token = await verified_id_token(
            idp, await redeem(idp, await person.to_client(direct)), ACR_MFA
        )
        assert token["amr"] == ["hwk", "user"]


class TestCodePage:
    async def test_offers_a_passkey_beside_the_code(self, idp: IdP, person: Browser) -> None:
        auth = SoftAuthenticator(idp.url)
        await with_passkey(person, auth)
        resp = await person.password((await person.authorize()).headers["location"])
        done = await passkey_second_step(person.http, auth, resp.headers["location"])
        await person.to_client(done)
        await person.enrol(f"/eco/{idp.eco}/login/enrol?return_to=/eco/{idp.eco}/account")
        account = await person.http.get(f"/eco/{idp.eco}/account")
        assert "Authenticator app: on" in account.text and "Laptop" in account.text
        person.http.cookies.clear()
        resp = await person.password((await person.authorize()).headers["location"])
        page = await person.http.get(resp.headers["location"])
        assert 'name="code"' in page.text and 'id="passkey-second-factor"' in page.text
        assert "Or use a passkey" in page.text and 'id="enrol-instead"' not in page.text
        # either completes it: here the app's code
        assert person.key is not None
        by_code = await person.submit_code(resp.headers["location"], code(person.key, 1))
        token = await verified_id_token(
            idp, await redeem(idp, await person.to_client(by_code)), ACR_MFA
        )
        assert token["amr"] == ["mfa", "otp", "pwd"]
