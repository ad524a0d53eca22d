"""Passkeys (WebAuthn) through the provider's real pages and endpoints, answered by a
software authenticator with real P-256 keys (py_webauthn verifies real signatures):
registration on the account page, sign-in with a passkey alone, a passkey as second
factor, and each refusal — wrong origin or RP ID, a replayed response, an expired
challenge, an unknown, removed, another person's or another ecosystem's credential, and
a signature counter that does not grow (a cloned authenticator, then blocked)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from identity.cli import commands
from identity.cli.seed import PASSWORD
from identity.domain import passkeys, signin
from identity.domain.crypto import digest
from identity.domain.passkeys import Refusal, RelyingParty
from identity.store import models
from identity.store import repository as repo
from identity.store.transaction import Tx
from tests.identity.conftest import IdP
from tests.support.authenticator import SoftAuthenticator, b64url, unb64url
from tests.support.identity import outbox_events
from tests.support.text import first_group

ACCOUNT = "/eco/acme/account"


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    # every refusal below counts against 127.0.0.1; the lockout has its own test
    return {"login_max_failures_address": 1000}


def _csrf(html: str) -> str:
    return first_group(r'name="csrf_token" value="([^"]+)"', html)


@pytest.fixture
async def web(idp: IdP) -> AsyncIterator[httpx.AsyncClient]:
    """A browser at the provider, as plain HTTP (named apart from the Chromium fixture)."""
    async with httpx.AsyncClient(base_url=idp.url, timeout=10) as http:
        yield http


async def password_sign_in(
    http: httpx.AsyncClient, username: str, eco: str = "acme", auth: SoftAuthenticator | None = None
) -> httpx.Response:
    """Sign in with the password; a person with a passkey then proves it (``auth``) as
    the second step. The answer that set the session."""
    page = await http.get(f"/eco/{eco}/login")
    form = {"csrf_token": _csrf(page.text), "username": username, "password": PASSWORD}
    resp = await http.post(f"/eco/{eco}/login", data=form)
    assert resp.status_code == 303, resp.text
    if resp.headers["location"].startswith(f"/eco/{eco}/login/second-factor"):
        assert auth is not None, "this person has a second factor"
        resp = await passkey_second_step(http, auth, resp.headers["location"])
        assert resp.status_code == 303, resp.text
    return resp


async def passkey_second_step(
    http: httpx.AsyncClient, auth: SoftAuthenticator, page_location: str, **tamper: Any
) -> httpx.Response:
    """On the second-factor page, "Use a passkey": its options, the ceremony, the post."""
    page = await http.get(page_location)
    assert page.status_code == 200, page.text
    form = first_group(
        r'<form method="post" action="([^"]+)" id="passkey-second-factor"', page.text
    )
    options_url = first_group(r'id="passkey-second-factor"\s+data-options="([^"]+)"', page.text)
    csrf = _csrf(page.text)
    options = await http.post(unescape(options_url), headers={"X-CSRF-Token": csrf})
    assert options.status_code == 200, options.text
    credential = auth.get(options.json(), **tamper)
    data = {"csrf_token": csrf, "credential": json.dumps(credential)}
    return await http.post(unescape(form), data=data)


async def registration_options(http: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    csrf = _csrf((await http.get(ACCOUNT)).text)
    resp = await http.post(
        "/eco/acme/passkeys/registration-options", headers={"X-CSRF-Token": csrf}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    return csrf, resp.json()


async def register(
    http: httpx.AsyncClient, auth: SoftAuthenticator, name: str, **tamper: str
) -> httpx.Response:
    csrf, options = await registration_options(http)
    credential = auth.create(options, **tamper)
    form = {"csrf_token": csrf, "credential": json.dumps(credential), "name": name}
    return await http.post("/eco/acme/passkeys", data=form)


async def sign_in_options(http: httpx.AsyncClient, eco: str = "acme") -> tuple[str, dict[str, Any]]:
    csrf = _csrf((await http.get(f"/eco/{eco}/login")).text)
    resp = await http.post(
        f"/eco/{eco}/passkeys/authentication-options", headers={"X-CSRF-Token": csrf}
    )
    assert resp.status_code == 200, resp.text
    return csrf, resp.json()


async def submit(
    http: httpx.AsyncClient, csrf: str, credential: dict[str, Any] | str, eco: str = "acme"
) -> httpx.Response:
    sent = credential if isinstance(credential, str) else json.dumps(credential)
    form = {"csrf_token": csrf, "credential": sent, "return_to": f"/eco/{eco}/account"}
    return await http.post(f"/eco/{eco}/login/passkey", data=form)


async def passkey_sign_in(
    http: httpx.AsyncClient, auth: SoftAuthenticator, eco: str = "acme", **tamper: Any
) -> httpx.Response:
    csrf, options = await sign_in_options(http, eco)
    return await submit(http, csrf, auth.get(options, **tamper), eco)


async def rows(idp: IdP, model: Any, *where: Any) -> list[Any]:
    def read(tx: Tx) -> list[Any]:
        return list(tx.s.scalars(select(model).where(*where)))

    found: list[Any] = await idp.rt.tx(read)
    return found


async def person_id(idp: IdP, username: str) -> str:
    found = await idp.rt.tx(lambda tx: repo.person_by_username(tx.s, "acme", username))
    assert found is not None
    return str(found.id)


async def audits(idp: IdP) -> list[dict[str, Any]]:
    """The data of every audit event identity wrote."""
    events = await outbox_events(idp.settings.database_url)
    return [e["data"] for e in events if "action" in e.get("data", {})]


def refused(resp: httpx.Response, status: int, words: str) -> None:
    """A refusal shown on the sign-in or account page, never a 500 and no session."""
    assert resp.status_code == status, resp.text
    assert words in resp.text, resp.text
    assert "pm_session" not in resp.headers.get("set-cookie", "")


class TestRegistration:
    async def test_options_follow_the_relying_party_policy(
        self, idp: IdP, web: httpx.AsyncClient
    ) -> None:
        await password_sign_in(web, "felix")
        _, options = await registration_options(web)
        assert options["rp"] == {"id": "127.0.0.1", "name": "ACME Partner Network"}
        assert options["authenticatorSelection"]["residentKey"] == "preferred"
        assert options["authenticatorSelection"]["userVerification"] == "preferred"
        assert options["attestation"] == "none"
        assert options["excludeCredentials"] == []
        assert len(unb64url(options["challenge"])) == 32
        # the user handle: 32 random bytes of the person's own, not their email or name
        handle = unb64url(options["user"]["id"])
        assert len(handle) == 32 and b"felix" not in handle
        assert options["user"]["name"] == "felix"
        _, again = await registration_options(web)
        assert again["user"]["id"] == options["user"]["id"]
        assert again["challenge"] != options["challenge"]
        async with httpx.AsyncClient(base_url=idp.url) as other:
            await password_sign_in(other, "fatima")
            _, hers = await registration_options(other)
        assert hers["user"]["id"] != options["user"]["id"]
        # challenges are kept hashed, never as sent
        stored = await rows(idp, models.PasskeyChallenge)
        assert digest(options["challenge"]) in {r.challenge_hash for r in stored}
        assert options["challenge"] not in {r.challenge_hash for r in stored}

        auth = SoftAuthenticator(idp.url)
        assert (await register(web, auth, "Phone")).status_code == 303
        _, later = await registration_options(web)
        [excluded] = later["excludeCredentials"]
        assert excluded["id"] == b64url(next(iter(auth.credentials)))
        assert excluded["transports"] == ["hybrid", "internal"]

    async def test_several_passkeys_renamed_and_removed(
        self, idp: IdP, web: httpx.AsyncClient
    ) -> None:
        await password_sign_in(web, "nadia")
        laptop, key = SoftAuthenticator(idp.url), SoftAuthenticator(idp.url)
        assert (await register(web, laptop, "Work laptop")).status_code == 303
        assert (await register(web, key, "  Blue   key ")).status_code == 303
        assert (await register(web, SoftAuthenticator(idp.url), "<b>x</b>")).status_code == 303
        assert "<b>x</b>" not in (await web.get(ACCOUNT)).text  # escaped, as all input
        [odd] = await rows(idp, models.Passkey, models.Passkey.name == "<b>x</b>")
        resp = await web.post(
            f"/eco/acme/passkeys/{odd.id}/remove",
            data={"csrf_token": _csrf((await web.get(ACCOUNT)).text)},
        )
        assert resp.status_code == 303
        page = (await web.get(ACCOUNT)).text
        assert "Work laptop" in page and "Blue key" in page
        mine = await rows(
            idp, models.Passkey, models.Passkey.person_id == await person_id(idp, "nadia")
        )
        assert {p.name for p in mine} == {"Work laptop", "Blue key"}
        stored = {p.name: p for p in mine}
        assert stored["Blue key"].sign_count == 0 and stored["Blue key"].transports == [
            "hybrid",
            "internal",
        ]
        csrf = _csrf(page)
        laptop_id = stored["Work laptop"].id
        resp = await web.post(
            f"/eco/acme/passkeys/{laptop_id}/rename",
            data={"csrf_token": csrf, "name": "Old laptop"},
        )
        assert resp.status_code == 303
        resp = await web.post(
            f"/eco/acme/passkeys/{stored['Blue key'].id}/remove", data={"csrf_token": csrf}
        )
        assert resp.status_code == 303
        page = (await web.get(ACCOUNT)).text
        assert "Old laptop" in page and "Blue key" not in page

        async with httpx.AsyncClient(base_url=idp.url) as fresh:
            refused(await passkey_sign_in(fresh, key), 401, "not registered here")
            assert (await passkey_sign_in(fresh, laptop)).status_code == 303

        # another person can neither rename nor remove it; a forged form changes nothing
        async with httpx.AsyncClient(base_url=idp.url) as other:
            await password_sign_in(other, "noah")
            token = _csrf((await other.get(ACCOUNT)).text)
            for action in ("rename", "remove"):
                resp = await other.post(
                    f"/eco/acme/passkeys/{laptop_id}/{action}",
                    data={"csrf_token": token, "name": "x"},
                )
                refused(resp, 404, "No such passkey of yours")
        resp = await web.post(
            f"/eco/acme/passkeys/{laptop_id}/remove", data={"csrf_token": "forged"}
        )
        assert resp.status_code == 403
        assert [
            p.name for p in await rows(idp, models.Passkey, models.Passkey.id == laptop_id)
        ] == ["Old laptop"]
        actions = {a["action"] for a in await audits(idp)}
        assert {"passkey.registered", "passkey.renamed", "passkey.removed"} <= actions

    async def test_refusals_store_nothing(self, idp: IdP, web: httpx.AsyncClient) -> None:
        auth = SoftAuthenticator(idp.url)
        # options: only for a signed-in person, only with the page's CSRF token
        resp = await web.post("/eco/acme/passkeys/registration-options")
        assert (
            resp.status_code == 403 and resp.headers["content-type"] == "application/problem+json"
        )
        csrf = _csrf((await web.get("/eco/acme/login")).text)
        resp = await web.post(
            "/eco/acme/passkeys/registration-options", headers={"X-CSRF-Token": csrf}
        )
        assert resp.status_code == 401 and resp.json()["code"] == "unauthenticated"

        await password_sign_in(web, "bruno")
        bruno = await person_id(idp, "bruno")
        refused(await register(web, auth, "x", origin="https://evil.example"), 400, "origin")
        refused(await register(web, auth, "x", rp_id="evil.example"), 400, "RP ID")
        # a response presented twice: the challenge went with the first
        csrf, options = await registration_options(web)
        form = {"csrf_token": csrf, "credential": json.dumps(auth.create(options)), "name": "A"}
        assert (await web.post("/eco/acme/passkeys", data=form)).status_code == 303
        refused(await web.post("/eco/acme/passkeys", data=form), 400, "already used")
        # an expired challenge
        csrf, options = await registration_options(web)
        await _expire(idp, options["challenge"])
        form = {"csrf_token": csrf, "credential": json.dumps(auth.create(options)), "name": "B"}
        refused(await web.post("/eco/acme/passkeys", data=form), 400, "expired")
        # a challenge handed to someone else
        async with httpx.AsyncClient(base_url=idp.url) as other:
            await password_sign_in(other, "carlos")
            _, theirs = await registration_options(other)
        form = {"csrf_token": csrf, "credential": json.dumps(auth.create(theirs)), "name": "C"}
        refused(await web.post("/eco/acme/passkeys", data=form), 400, "someone else")
        # what is not a credential at all
        for junk in ("", "{", "[]", '{"response": {"clientDataJSON": "!!"}}', "x" * 70_000):
            form = {"csrf_token": csrf, "credential": junk, "name": "D"}
            resp = await web.post("/eco/acme/passkeys", data=form)
            assert resp.status_code == 400, (junk[:20], resp.text)
        names = [p.name for p in await rows(idp, models.Passkey, models.Passkey.person_id == bruno)]
        assert names == ["A"]


async def _expire(idp: IdP, challenge: str) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)

    def work(tx: Tx) -> None:
        tx.s.execute(
            update(models.PasskeyChallenge)
            .where(models.PasskeyChallenge.challenge_hash == digest(challenge))
            .values(expires_at=past)
        )

    await idp.rt.tx(work)


@pytest.fixture(scope="module")
async def chloes_passkey(idp: IdP) -> SoftAuthenticator:
    """Chloe's laptop, holding the passkey she added on her account page."""
    auth = SoftAuthenticator(idp.url)
    async with httpx.AsyncClient(base_url=idp.url) as http:
        await password_sign_in(http, "chloe")
        assert (await register(http, auth, "Chloe's laptop")).status_code == 303
    return auth


class TestSignIn:
    async def test_a_passkey_alone_signs_in_as_the_password_does(
        self, idp: IdP, web: httpx.AsyncClient, chloes_passkey: SoftAuthenticator
    ) -> None:
        csrf, options = await sign_in_options(web)
        assert options["rpId"] == "127.0.0.1" and options["allowCredentials"] == []
        assert options["userVerification"] == "preferred"
        resp = await submit(web, csrf, chloes_passkey.get(options))
        assert resp.status_code == 303 and resp.headers["location"] == ACCOUNT
        assert "Signed in as Chloe Chen" in (await web.get(ACCOUNT)).text
        sid = web.cookies["pm_session"]
        [session] = await rows(
            idp, models.LoginSession, models.LoginSession.sid_hash == digest(sid)
        )
        assert session.amr == ["hwk", "user"]
        assert session.person_id == await person_id(idp, "chloe")
        [key] = await rows(idp, models.Passkey, models.Passkey.person_id == session.person_id)
        assert key.sign_count == 1 and key.last_used_at is not None
        assert any(
            a["action"] == "login.succeeded"
            and a["details"].get("method") == "passkey"
            and a["target"] == session.person_id
            for a in await audits(idp)
        )

    async def test_without_user_verification_only_hwk(
        self, idp: IdP, web: httpx.AsyncClient
    ) -> None:
        auth = SoftAuthenticator(idp.url, user_verified=False, counting=False)
        async with httpx.AsyncClient(base_url=idp.url) as http:
            await password_sign_in(http, "olivia")
            assert (await register(http, auth, "Key")).status_code == 303
        for _ in range(2):  # a counter that stays 0 is allowed: the authenticator keeps none
            web.cookies.clear()
            assert (await passkey_sign_in(web, auth)).status_code == 303
            sid = web.cookies["pm_session"]
            [row] = await rows(
                idp, models.LoginSession, models.LoginSession.sid_hash == digest(sid)
            )
            assert row.amr == ["hwk"]

    async def test_refusals(
        self, idp: IdP, web: httpx.AsyncClient, chloes_passkey: SoftAuthenticator
    ) -> None:
        refused(
            await passkey_sign_in(web, chloes_passkey, origin="http://localhost:1"),
            401,
            "origin",
        )
        refused(await passkey_sign_in(web, chloes_passkey, rp_id="evil.example"), 401, "RP ID")
        # replayed: the same assertion again (its challenge is spent)
        csrf, options = await sign_in_options(web)
        assertion = chloes_passkey.get(options)
        assert (await submit(web, csrf, assertion)).status_code == 303
        web.cookies.delete("pm_session")
        refused(await submit(web, csrf, assertion), 401, "already used")
        # expired
        csrf, options = await sign_in_options(web)
        await _expire(idp, options["challenge"])
        refused(await submit(web, csrf, chloes_passkey.get(options)), 401, "expired")
        # a credential never registered here
        stranger = SoftAuthenticator(idp.url)
        stranger.create(
            {"rp": {"id": "127.0.0.1"}, "user": {"id": b64url(b"x" * 32)}, "challenge": "AA"}
        )
        refused(await passkey_sign_in(web, stranger), 401, "not registered here")
        # Chloe's credential naming another account's user handle
        csrf, options = await sign_in_options(web)
        swapped = chloes_passkey.get(options)
        swapped["response"]["userHandle"] = b64url(b"y" * 32)
        refused(await submit(web, csrf, swapped), 401, "another account")
        # a signature by another key under Chloe's credential id
        csrf, options = await sign_in_options(web)
        forged = stranger.get(options)
        [chloes] = chloes_passkey.credentials.values()
        forged["id"] = forged["rawId"] = b64url(chloes.id)
        forged["response"]["userHandle"] = b64url(chloes.user_handle)
        refused(await submit(web, csrf, forged), 401, "signature")
        # a registration challenge is not a sign-in challenge
        async with httpx.AsyncClient(base_url=idp.url) as http:
            await password_sign_in(http, "chloe", auth=chloes_passkey)
            _, reg = await registration_options(http)
        csrf = _csrf((await web.get("/eco/acme/login")).text)
        reg["rpId"] = "127.0.0.1"
        refused(await submit(web, csrf, chloes_passkey.get(reg)), 401, "something else")
        # the page's CSRF token, and what is not a credential
        resp = await web.post("/eco/acme/passkeys/authentication-options")
        assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
        refused(await submit(web, "forged", chloes_passkey.get(options)), 403, "expired")
        for junk in ("", "null", "{}", '{"response": []}', "x" * 70_000):
            resp = await submit(web, csrf, junk)
            assert resp.status_code in (400, 401), (junk[:20], resp.text)
        reasons = {
            a["details"].get("reason") for a in await audits(idp) if a["action"] == "login.failed"
        }
        assert {
            "passkey_invalid",
            "passkey_challenge_unknown",
            "passkey_challenge_expired",
        } <= reasons
        assert {"passkey_unknown_credential", "passkey_challenge_mismatch"} <= reasons

    async def test_a_counter_that_does_not_grow_blocks_the_passkey(
        self, idp: IdP, web: httpx.AsyncClient
    ) -> None:
        auth = SoftAuthenticator(idp.url)
        async with httpx.AsyncClient(base_url=idp.url) as http:
            await password_sign_in(http, "carlos")
            assert (await register(http, auth, "Cloned")).status_code == 303
            assert (await passkey_sign_in(web, auth)).status_code == 303  # counter 1
            assert (await passkey_sign_in(web, auth)).status_code == 303  # counter 2
            web.cookies.clear()
            # a copy of the key, whose counter is behind (or equal): refused and flagged
            refused(await passkey_sign_in(web, auth, counter=2), 401, "copied")
            [key] = await rows(
                idp, models.Passkey, models.Passkey.person_id == await person_id(idp, "carlos")
            )
            assert key.cloned_at is not None and key.sign_count == 2
            # from now on even the genuine authenticator is refused, until it is replaced
            refused(await passkey_sign_in(web, auth, counter=50), 401, "blocked")
            assert "blocked" in (await http.get(ACCOUNT)).text
        assert any(a["action"] == "passkey.clone_suspected" for a in await audits(idp))

    async def test_a_locked_address_or_a_disabled_account_signs_in_no_more(
        self, idp: IdP, web: httpx.AsyncClient
    ) -> None:
        auth = SoftAuthenticator(idp.url)
        async with httpx.AsyncClient(base_url=idp.url) as http:
            await password_sign_in(http, "fatima")
            assert (await register(http, auth, "Desk")).status_code == 303
        fatima = await person_id(idp, "fatima")
        key = "addr:127.0.0.1"
        soon = datetime.now(UTC) + timedelta(minutes=5)

        def lock(tx: Tx) -> None:  # the earlier refusals of this module counted here
            row = repo.get_throttle(tx.s, key)
            if row is None:
                row = models.LoginThrottle(key=key, failures=0, window_start=datetime.now(UTC))
                repo.add(tx.s, row)
            row.locked_until = soon

        def unlock(tx: Tx) -> None:
            repo.clear_throttle(tx.s, key)

        def active(tx: Tx, value: bool) -> None:
            tx.s.execute(
                update(models.Person).where(models.Person.id == fatima).values(active=value)
            )

        await idp.rt.tx(lock)
        try:
            refused(await passkey_sign_in(web, auth), 429, "Too many failed attempts")
        finally:
            await idp.rt.tx(unlock)
        await idp.rt.tx(active, False)
        try:
            refused(await passkey_sign_in(web, auth), 401, "cannot sign in")
        finally:
            await idp.rt.tx(active, True)
        assert (await passkey_sign_in(web, auth)).status_code == 303

    async def test_another_ecosystems_passkey_is_unknown_there(
        self, idp: IdP, web: httpx.AsyncClient, chloes_passkey: SoftAuthenticator
    ) -> None:
        await commands.create_ecosystem(
            idp.settings,
            "initech",
            "Initech",
            ("initech-corp", "Initech"),
            "ivan",
            "initech-pass-1",
        )
        # same deployment, same host, so the same RP ID: the authenticator would answer
        csrf, options = await sign_in_options(web, "initech")
        assert options["rpId"] == "127.0.0.1"
        resp = await submit(web, csrf, chloes_passkey.get(options), "initech")
        refused(resp, 401, "not registered here")


class TestSecondFactor:
    async def test_after_a_password(self, idp: IdP, chloes_passkey: SoftAuthenticator) -> None:
        rp = RelyingParty.of(idp.issuer, "ACME")

        def person(tx: Tx, username: str) -> models.Person:
            found = repo.person_by_username(tx.s, "acme", username)
            assert found is not None
            return found

        def ask(tx: Tx, username: str) -> dict[str, Any]:
            return dict(
                json.loads(passkeys.authentication_options(tx, rp, "acme", person(tx, username)))
            )

        def answer(tx: Tx, username: str, response: dict[str, Any]) -> list[str] | Refusal:
            return passkeys.second_factor(tx, rp, person(tx, username), json.dumps(response))

        options = await idp.rt.tx(ask, "chloe")
        assert [c["id"] for c in options["allowCredentials"]] == [
            b64url(k) for k in chloes_passkey.credentials
        ]
        amr = await idp.rt.tx(answer, "chloe", chloes_passkey.get(options))
        assert amr == ["hwk", "mfa", "pwd", "user"]

        def start(tx: Tx) -> str:
            sid, _ = signin.start_session(tx, idp.settings, person(tx, "chloe"), amr=amr)
            return sid

        sid = await idp.rt.tx(start)
        [row] = await rows(idp, models.LoginSession, models.LoginSession.sid_hash == digest(sid))
        assert row.amr == ["hwk", "mfa", "pwd", "user"]

        # Chloe's passkey cannot be Noah's second factor, with his challenge or hers
        options = await idp.rt.tx(ask, "noah")
        outcome = await idp.rt.tx(
            answer,
            "noah",
            chloes_passkey.get(options, credential=next(iter(chloes_passkey.credentials))),
        )
        assert isinstance(outcome, Refusal) and outcome.reason == "wrong_person"
        options = await idp.rt.tx(ask, "chloe")
        outcome = await idp.rt.tx(answer, "noah", chloes_passkey.get(options))
        assert isinstance(outcome, Refusal) and outcome.reason == "challenge_mismatch"
        # nor does a removed one count
        key = (await idp.rt.tx(lambda tx: passkeys.list_passkeys(tx, person(tx, "chloe"))))[0]
        options = await idp.rt.tx(ask, "chloe")
        assert await idp.rt.tx(lambda tx: passkeys.remove(tx, person(tx, "chloe"), key.id))
        outcome = await idp.rt.tx(answer, "chloe", chloes_passkey.get(options))
        assert isinstance(outcome, Refusal) and outcome.reason == "unknown_credential"
