"""Web Push of notifications against a real push receiver (``tests/portal/pushservice.py``):
each message is checked (VAPID JWT, aes128gcm) and decrypted with the subscription's keys.
Opt-in per kind, expired subscriptions, and who may register or remove a subscription."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh
from tests.portal.pushservice import PushService, push_service

PUSH = "/notifications/push"


@pytest.fixture
async def receiver() -> AsyncIterator[PushService]:
    async with push_service() as service:
        yield service
        assert not service.problems, service.problems


async def call(mesh: Mesh, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
    async with mesh.api() as api:
        return await api.request(method, path, json=body, headers=mesh.bearer(who))


async def ok(mesh: Mesh, who: str, method: str, path: str, body: Any = None) -> Any:
    resp = await call(mesh, who, method, path, body)
    assert resp.status_code < 300, resp.text
    return resp.json()


async def subscribed(
    mesh: Mesh, receiver: PushService, who: str, kinds: dict[str, bool], gone: bool = False
) -> tuple[Any, str]:
    """``who`` opted in to ``kinds`` with a browser of the receiver: (browser, its id)."""
    await ok(mesh, who, "PUT", PUSH + "/kinds", {"kinds": kinds})
    browser = receiver.browser(f"{who}-{uuid.uuid4().hex[:8]}")
    browser.gone = gone
    view = await ok(mesh, who, "POST", PUSH + "/subscriptions", browser.subscription())
    return browser, view["id"]


async def mention(mesh: Mesh, author: str, handle: str) -> str:
    word = uuid.uuid4().hex[:10]
    body = {"body": f"@{handle} have a look at {word}"}
    await ok(mesh, author, "POST", f"/forums/threads/{mesh.seeded['thread']}/posts", body)
    return word


class TestPushes:
    async def test_an_introduction_is_pushed_encrypted_and_signed(
        self, mesh: Mesh, receiver: PushService
    ) -> None:
        chloe, nadia = mesh.subs["chloe"], mesh.subs["nadia"]
        to_chloe, _ = await subscribed(mesh, receiver, "chloe", {"introduction": True})
        # nadia pushes mentions only: she opted out of introductions
        to_nadia, _ = await subscribed(
            mesh, receiver, "nadia", {"introduction": False, "mention": True}
        )
        settings = await ok(mesh, "chloe", "GET", PUSH)
        assert settings["kinds"] == {"introduction": True, "mention": False, "reply": False}

        intro = await ok(mesh, "bruno", "POST", "/introductions", {"a": chloe, "b": nadia})
        got = await to_chloe.next()
        while got["message"]["url"] != f"/introductions#intro-{intro['id']}":
            # the seed's introduction of chloe may still be on its way to her
            assert got["message"]["url"] == f"/introductions#intro-{mesh.seeded['intro']}"
            got = await to_chloe.next()
        message = got["message"]
        assert message["kind"] == "introduction"
        assert message["body"].startswith("Bruno Broker introduced you to someone")
        assert message["title"] == "Introduction" and isinstance(message["notification"], int)
        # signed with the deployment's key, the one the page subscribes with
        assert receiver.vapid_keys == {settings["public_key"]}
        assert got["vapid"]["sub"].startswith("mailto:")

        # nadia: pushes are sent in order, so her mention coming proves no introduction came
        word = await mention(mesh, "noah", "nadia")
        got = await to_nadia.next()
        assert got["message"]["kind"] == "mention" and word in got["message"]["body"]
        assert to_nadia.received == []

    async def test_an_expired_subscription_is_removed(
        self, mesh: Mesh, receiver: PushService
    ) -> None:
        _browser, sid = await subscribed(mesh, receiver, "bruno", {"mention": True}, gone=True)
        assert [s["id"] for s in (await ok(mesh, "bruno", "GET", PUSH))["subscriptions"]] == [sid]
        await mention(mesh, "felix", "bruno")
        async with asyncio.timeout(15):
            while (await ok(mesh, "bruno", "GET", PUSH))["subscriptions"]:
                await asyncio.sleep(0.1)


class TestWhoMay:
    async def test_nobody_removes_or_takes_over_someone_elses_subscription(
        self, mesh: Mesh, receiver: PushService
    ) -> None:
        browser, sid = await subscribed(mesh, receiver, "carlos", {"reply": True})
        denied = await call(mesh, "noah", "DELETE", f"{PUSH}/subscriptions/{sid}")
        assert denied.status_code == 404, denied.text
        taken = await call(mesh, "noah", "POST", PUSH + "/subscriptions", browser.subscription())
        assert taken.status_code == 409, taken.text
        mine = (await ok(mesh, "carlos", "GET", PUSH))["subscriptions"]
        assert [s["id"] for s in mine] == [sid], "carlos's subscription is untouched"
        assert (await ok(mesh, "noah", "GET", PUSH))["subscriptions"] == []
        await ok(mesh, "carlos", "DELETE", f"{PUSH}/subscriptions/{sid}")
        assert (await ok(mesh, "carlos", "GET", PUSH))["subscriptions"] == []

    async def test_bad_subscriptions_are_refused(self, mesh: Mesh) -> None:
        keys = {"p256dh": "A" * 87, "auth": "B" * 22}
        for body in (
            # beyond the allow-listed loopback, no private or metadata address (SSRF)
            {"endpoint": "http://169.254.169.254/latest/meta-data", "keys": keys},
            {"endpoint": "http://10.1.2.3/push", "keys": keys},
            {"endpoint": "javascript:alert(1)", "keys": {"p256dh": "A" * 87, "auth": "B" * 22}},
            {"endpoint": "https://push.example/x", "keys": {"p256dh": "not base64!", "auth": "x"}},
            {"endpoint": "https://push.example/x"},
        ):
            resp = await call(mesh, "noah", "POST", PUSH + "/subscriptions", body)
            assert resp.status_code in (400, 422), resp.text
        anonymous = await mesh.api().__aenter__()
        try:
            resp = await anonymous.get(PUSH)
            assert resp.status_code == 401
        finally:
            await anonymous.aclose()


class TestPortalForms:
    async def test_opt_in_form_and_subscription_api_need_the_csrf_token(
        self, mesh: Mesh, receiver: PushService
    ) -> None:
        async with sign_in(mesh, "olivia", "/notifications") as portal:
            page = await portal.get("/notifications")
            assert 'action="/notifications/push"' in page.text
            token = csrf_of(page.text)
            stale = await portal.post(PUSH, data={"mention": "on"})
            assert stale.status_code == 403
            wrong = await portal.post(PUSH, data={"mention": "on", "csrf": "x" * 40})
            assert wrong.status_code == 403
            assert (await ok(mesh, "olivia", "GET", PUSH))["kinds"]["mention"] is False
            saved = await portal.post(PUSH, data={"mention": "on", "csrf": token})
            assert saved.status_code == 200 and "Push settings saved." in saved.text
            assert re.search(r'id="push-mention" name="mention" checked', saved.text)
            assert (await ok(mesh, "olivia", "GET", PUSH))["kinds"]["mention"] is True

            browser = receiver.browser("olivia-portal")
            api = "/api/push/subscriptions"
            refused = await portal.post(api, json=browser.subscription())
            assert refused.status_code == 403
            made = await portal.post(
                api, json=browser.subscription(), headers={"X-CSRF-Token": token}
            )
            assert made.status_code == 201, made.text
            sid = made.json()["id"]
            assert (await portal.delete(f"{api}/{sid}")).status_code == 403
            listed = (await ok(mesh, "olivia", "GET", PUSH))["subscriptions"]
            assert [s["id"] for s in listed] == [sid]

            # signing out removes this browser's subscription (the form names it)
            out = await portal.post("/auth/logout", data={"csrf": token, "push": sid})
            assert out.status_code < 400
            assert (await ok(mesh, "olivia", "GET", PUSH))["subscriptions"] == []
