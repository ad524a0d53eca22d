"""The notification centre: the gateway's live stream (who may open it, that it carries a
person's own notifications only, that it is outside the load shedder's bound and deadline,
on two gateway replicas), and the portal's page in a real browser (live arrival and its
latency, marking read, turning a kind off)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict

import httpx
import jwt
import nats
import pytest

from contracts.subjects import event_subject
from contracts.v1.identity import RevokedToken, TokenRevoked, TokenRevokedData
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from identity.cli.devclient import login
from identity.cli.seed import PASSWORD
from tests.portal.browser import ARTIFACTS, signed_in_page
from tests.portal.login import sign_in
from tests.portal.mesh import ALL, CLI_REDIRECT, ECO, Mesh
from tests.support import infra

SSE = {"Accept": "text/event-stream"}
STREAM = f"/v1/ecosystems/{ECO}/notifications/stream"


class LatencyReport(TypedDict):
    """What the live-latency test writes to its artifact."""

    events: int
    p50_ms: float
    max_ms: float
    all_ms: list[float]


class Events:
    """The Server-Sent Events of one open stream, parsed as they come."""

    def __init__(self, resp: httpx.Response) -> None:
        self.resp = resp
        self.lines = resp.aiter_lines()

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next event or comment: ``{"event", "data", "id"}`` (``event`` ":" for a comment)."""
        frame: dict[str, Any] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if not line:
                    if frame:
                        return frame
                    continue
                if line.startswith(":"):
                    return {"event": ":"}
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    frame["data"] = json.loads(value)
                elif name in ("event", "id", "retry"):
                    frame[name] = value
        raise AssertionError("the stream ended")

    async def next_event(self, kind: str) -> dict[str, Any]:
        while True:
            frame = await self.next()
            if frame.get("event") == kind:
                return frame


@asynccontextmanager
async def stream(
    base: str, token: str | None, headers: dict[str, str] | None = None
) -> AsyncIterator[Events]:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=30)) as http,
        http.stream("GET", STREAM, headers={**SSE, **auth, **(headers or {})}) as resp,
    ):
        assert resp.status_code == 200, (await resp.aread()).decode()
        assert resp.headers["content-type"] == "text/event-stream"
        events = Events(resp)
        assert (await events.next_event("unread"))["data"]["unread"] >= 0
        yield events


async def reply(mesh: Mesh, author: str, text: str, thread: str | None = None) -> dict[str, Any]:
    async with mesh.api() as api:
        resp = await api.post(
            f"/forums/threads/{thread or mesh.seeded['thread']}/posts",
            json={"body": text},
            headers=mesh.bearer(author),
        )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def refusal(base: str, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        return await http.get(path, headers=headers)


class TestStreamRefusals:
    async def test_an_unauthenticated_stream_is_refused(self, mesh: Mesh) -> None:
        resp = await refusal(mesh.gateway_url, STREAM, SSE)
        assert resp.status_code == 401
        assert resp.headers["content-type"] == "application/problem+json"
        forged = await refusal(mesh.gateway_url, STREAM, {**SSE, "Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401
        portal = await refusal(mesh.portal_url, "/api/notifications/stream", SSE)
        assert portal.status_code == 401

    async def test_another_ecosystem_a_missing_scope_and_no_event_stream_are_refused(
        self, mesh: Mesh
    ) -> None:
        noah = {**SSE, "Authorization": f"Bearer {mesh.tokens['noah']}"}
        other = await refusal(mesh.gateway_url, STREAM.replace(ECO, "globex"), noah)
        assert other.status_code == 403, other.text
        async with httpx.AsyncClient(timeout=10) as browser:
            narrow = await login(
                browser, mesh.issuer, "mesh-cli", "noah", PASSWORD, CLI_REDIRECT, "openid profile"
            )
        scopeless = {**SSE, "Authorization": f"Bearer {narrow['access_token']}"}
        resp = await refusal(mesh.gateway_url, STREAM, scopeless)
        assert resp.status_code == 403 and "forum:read" in resp.json()["detail"]
        plain = await refusal(mesh.gateway_url, STREAM, {"Authorization": noah["Authorization"]})
        assert plain.status_code == 406
        assert plain.json()["code"] == "not_acceptable"


class TestOtherRefusals:
    @pytest.mark.parametrize("path", ["/notifications/read", "/notifications/preferences"])
    async def test_portal_forms_need_a_session_and_its_csrf_token(
        self, mesh: Mesh, path: str
    ) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url, timeout=10) as anonymous:
            assert (await anonymous.post(path, data={"reply": "on"})).status_code == 401
            page = await anonymous.get("/notifications")
            assert page.status_code == 303 and "/auth/login" in page.headers["location"]
        async with sign_in(mesh, "noah", "/notifications") as noah:
            forged = await noah.post(path, data={"id": "1", "reply": "on"})
            assert forged.status_code == 403

    async def test_preferences_are_bound_to_the_token(self, mesh: Mesh) -> None:
        path = "/notifications/preferences"
        async with mesh.api() as api:
            assert (await api.get(path)).status_code == 401
            other = await api.put(
                f"{mesh.gateway_url}/v1/ecosystems/globex{path}",
                json={"kinds": {"reply": False}},
                headers=mesh.bearer("noah"),
            )
            assert other.status_code == 403
            odd = await api.put(
                path, json={"kinds": {"gossip": False}}, headers=mesh.bearer("noah")
            )
            assert odd.status_code == 422
            mine = await api.get(path, headers=mesh.bearer("noah"))
        assert mine.status_code == 200 and set(mine.json()["kinds"]) == {
            "mention",
            "reply",
            "introduction",
            "broker",
            "verification",
        }


class TestStreamDelivery:
    async def test_each_person_hears_their_own_notifications_only(self, mesh: Mesh) -> None:
        async with (
            stream(mesh.gateway_url, mesh.tokens["noah"]) as noah,
            stream(mesh.gateway_url, mesh.tokens["chloe"]) as chloe,
        ):
            post = await reply(mesh, "felix", "A reply for the thread's author")
            heard = await noah.next_event("notification")
            note = heard["data"]["notification"]
            assert (note["kind"], note["action"], note["content_id"]) == (
                "reply",
                "replied",
                post["id"],
            )
            assert heard["id"] == str(note["id"]) and heard["data"]["unread"] >= 1
            async with mesh.api() as api:
                marked = await api.post(
                    "/notifications/read", json={"ids": [note["id"]]}, headers=mesh.bearer("noah")
                )
            assert marked.status_code == 200, marked.text
            read = await noah.next_event("read")
            assert read["data"] == {"ids": [note["id"]], "unread": marked.json()["unread"]}
            # Then one for chloe: it must be the first thing her stream carries, events
            # being delivered in stream order (noah's came first).
            mention = await reply(mesh, "felix", "Over to you @chloe")
            first = await chloe.next_event("notification")
            assert first["data"]["notification"]["content_id"] == mention["id"]
            assert first["data"]["notification"]["kind"] == "mention"

    async def test_reconnecting_with_last_event_id_catches_up(self, mesh: Mesh) -> None:
        async with stream(mesh.gateway_url, mesh.tokens["noah"]) as noah:
            post = await reply(mesh, "fatima", "First of two")
            seen = await noah.next_event("notification")
        assert seen["data"]["notification"]["content_id"] == post["id"]
        missed = await reply(mesh, "fatima", "Second, while noah was away")
        # The catch-up comes first, before the unread count.
        async with (
            httpx.AsyncClient(base_url=mesh.gateway_url, timeout=10) as http,
            http.stream(
                "GET",
                STREAM,
                headers={**SSE, **mesh.bearer("noah"), "Last-Event-ID": seen["id"]},
            ) as resp,
        ):
            frames = Events(resp)
            caught = await frames.next_event("notification")
            assert caught["data"]["notification"]["content_id"] == missed["id"]
            assert int(caught["id"]) > int(seen["id"])


class TestEventsBecomeNotifications:
    async def test_introductions_broker_actions_and_verifications(self, mesh: Mesh) -> None:
        """Matching's and profile's events reach the people they are about, each as the
        step of someone else (a broker's, the other person's)."""
        nadia, fatima = mesh.subs["nadia"], mesh.subs["fatima"]

        async def call(who: str, method: str, path: str, body: Any = None) -> Any:
            async with mesh.api() as api:
                resp = await api.request(method, path, json=body, headers=mesh.bearer(who))
            assert resp.status_code < 300, resp.text
            return resp.json()

        def seen(frame: dict[str, Any]) -> tuple[str, str, str]:
            note = frame["data"]["notification"]
            return note["kind"], note["action"], note["actor"]

        async with (
            stream(mesh.gateway_url, mesh.tokens["nadia"]) as to_nadia,
            stream(mesh.gateway_url, mesh.tokens["fatima"]) as to_fatima,
        ):
            intro = await call("bruno", "POST", "/introductions", {"a": nadia, "b": fatima})
            bruno = mesh.subs["bruno"]
            for events in (to_nadia, to_fatima):
                heard = await events.next_event("notification")
                assert seen(heard) == ("broker", "approved", bruno)
                assert heard["data"]["notification"]["content_id"] == intro["id"]
            await call("nadia", "POST", f"/introductions/{intro['id']}/accept")
            accepted = await to_fatima.next_event("notification")
            assert seen(accepted) == ("introduction", "accepted", nadia)
            await call("fatima", "POST", f"/introductions/{intro['id']}/accept")
            assert seen(await to_fatima.next_event("notification")) == (
                "introduction",
                "connected",
                nadia,
            )
            # nadia's stream: her own acceptance told her nothing; next comes the connection
            assert seen(await to_nadia.next_event("notification")) == (
                "introduction",
                "connected",
                fatima,
            )
            await call("bruno", "PUT", f"/people/{fatima}/verification", {"note": "Met her"})
            verified = await to_fatima.next_event("notification")
            assert seen(verified) == ("verification", "verified", bruno)
            assert verified["data"]["notification"]["excerpt"] == "Met her"


class TestRevocation:
    async def test_a_revoked_token_ends_its_stream_before_the_next_notification(
        self, mesh: Mesh
    ) -> None:
        async with httpx.AsyncClient(timeout=10) as browser:
            own = await login(
                browser, mesh.issuer, "mesh-cli", "carlos", PASSWORD, CLI_REDIRECT, ALL
            )
        token = own["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        revoked = TokenRevoked(
            ecosystem=ECO,
            data=TokenRevokedData(tokens=[RevokedToken(jti=claims["jti"], exp=claims["exp"])]),
        )
        async with stream(mesh.gateway_url, token) as events:
            nc = await nats.connect(mesh.nats_url)
            try:
                subject = event_subject(ECO, revoked.type)
                await nc.jetstream().publish(subject, revoked.model_dump_json().encode())
            finally:
                await nc.close()
            async with mesh.api() as api:  # the gateway has heard of it ...
                auth = {"Authorization": f"Bearer {token}"}
                for _ in range(100):
                    if (await api.get("/notifications", headers=auth)).status_code == 401:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the revocation never reached the gateway")
            await reply(mesh, "felix", "Are you there @carlos?")  # ... and this is not sent
            with pytest.raises(AssertionError, match="the stream ended"):
                while True:
                    assert (await events.next()).get("event") != "notification"


@pytest.fixture(scope="module")
async def tight_gateway(mesh: Mesh) -> AsyncIterator[str]:
    """A second gateway replica on the same mesh, bounded to one request in flight with a
    0.3 s deadline and to two open streams, sending a stream heartbeat every 0.6 s."""
    settings = GatewaySettings(
        nats_url=mesh.nats_url,
        identity_url=mesh.identity_url,
        environment="test",
        rate_limits_enabled=False,
        access_log=False,
        max_in_flight=1,
        request_deadline_s=0.3,
        stream_heartbeat_s=0.6,
        max_streams=2,
    )
    async with infra.serve_app(create_gateway(settings)) as url:
        yield url


class TestStreamsAreNotShed:
    async def test_open_streams_take_no_slot_and_outlive_the_deadline(
        self, mesh: Mesh, tight_gateway: str
    ) -> None:
        async with (
            stream(tight_gateway, mesh.tokens["noah"]) as first,
            stream(tight_gateway, mesh.tokens["noah"]) as second,
        ):
            async with httpx.AsyncClient(base_url=tight_gateway, timeout=10) as http:
                listed = await http.get(
                    f"/v1/ecosystems/{ECO}/notifications", headers=mesh.bearer("noah")
                )
            assert listed.status_code == 200, "two open streams must not fill a bound of one"
            third = await refusal(tight_gateway, STREAM, {**SSE, **mesh.bearer("chloe")})
            assert third.status_code == 503 and third.json()["code"] == "overloaded"
            assert (await first.next()) == {"event": ":"}  # a heartbeat past the deadline
            post = await reply(mesh, "carlos", "Heard on the other replica")  # via the first
            for events in (first, second):
                heard = await events.next_event("notification")
                assert heard["data"]["notification"]["content_id"] == post["id"]


@pytest.mark.browser
class TestNotificationCentre:
    async def test_live_notifications_arrive_in_the_open_page(
        self, browser: Any, mesh: Mesh
    ) -> None:
        """Measured: from just before the post that causes it to the page's DOM update."""
        latencies: list[float] = []
        async with signed_in_page(browser, mesh, "noah") as page:
            await page.goto(f"{mesh.portal_url}/notifications")
            await page.wait_for_selector("body[data-live=open]")
            for n in range(6):
                started = time.time() * 1000
                text = f"Live reply number {n}"
                await reply(mesh, "felix", text)
                item = page.locator("#notifications li[data-arrived]", has_text=text)
                await item.first.wait_for()
                arrived = float(await item.first.get_attribute("data-arrived") or 0)
                latencies.append(arrived - started)
                assert await item.first.get_attribute("data-kind") == "reply"
            count = await page.locator("#unread-count").get_attribute("data-unread")
            assert count is not None and int(count) >= 6
        report: LatencyReport = {
            "events": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1),
            "max_ms": round(max(latencies), 1),
            "all_ms": [round(x, 1) for x in latencies],
        }
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "notification-latency.json").write_text(json.dumps(report))
        print("live notification latency (publish to DOM):", report)
        assert report["p50_ms"] < 1000, report

    async def test_marking_one_and_all_read(self, browser: Any, mesh: Mesh) -> None:
        await reply(mesh, "fatima", "Something to read")
        async with signed_in_page(browser, mesh, "noah") as page:
            await page.goto(f"{mesh.portal_url}/notifications")
            before = int(await page.locator("#notes-unread").inner_text())
            assert before >= 1
            first = page.locator("#notifications li.unread").first
            note_id = await first.get_attribute("id")
            await first.get_by_role("button", name="Mark read").click()
            await page.get_by_text("Marked as read.").wait_for()
            assert await page.locator(f"#{note_id}").get_attribute("class") in (None, "")
            assert int(await page.locator("#notes-unread").inner_text()) == before - 1
            await page.locator("#mark-all-read").click()
            await page.get_by_text("Marked as read.").wait_for()
            assert await page.locator("#notes-unread").inner_text() == "0"
            assert await page.locator("#notifications li.unread").count() == 0
            assert await page.locator("#unread-count").inner_text() == ""

    async def test_a_kind_turned_off_is_not_notified(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "noah") as page:
            await page.goto(f"{mesh.portal_url}/notifications")
            await page.get_by_label("Replies to my threads").uncheck()
            await page.locator("#save-prefs").click()
            await page.get_by_text("Notification settings saved.").wait_for()
            assert not await page.get_by_label("Replies to my threads").is_checked()
            await page.wait_for_selector("body[data-live=open]")
            try:
                muted = await reply(mesh, "felix", "A reply noah turned off")
                mention = await reply(mesh, "felix", "But a mention @noah still counts")
                await page.locator(
                    "#notifications li[data-arrived]", has_text="still counts"
                ).wait_for()
            finally:
                await page.get_by_label("Replies to my threads").check()
                await page.locator("#save-prefs").click()
                await page.get_by_text("Notification settings saved.").wait_for()
        async with mesh.api() as api:
            box = (await api.get("/notifications", headers=mesh.bearer("noah"))).json()
        ids = {(n["kind"], n["content_id"]) for n in box["items"]}
        assert ("mention", mention["id"]) in ids
        assert not any(content == muted["id"] for _kind, content in ids), box
