"""The lean client-credentials path in the HTTP protocol (:mod:`identity.wire`), on the wire.

Raw sockets, because what is tested here is what httpx keeps from us: several requests in
one write, the order of the answers, who closes the connection, interim responses, HTTP/1.0
and chunked request bodies.

Two counters tell who answered: ``app.fast_path.issued`` counts every lean answer (the
protocol's and the ASGI middleware's, which still sees what the protocol declines), and
``Answers.wire`` counts the tokens :func:`identity.wire.issue` handed the protocol itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from identity import wire
from tests.identity.conftest import IdP
from tests.support.identity import serve_idp, start_idp

CLIENT = "northwind-backend"
SCOPE = "directory:read profile:read"
FORM = "grant_type=client_credentials&scope=directory%3Aread+profile%3Aread"
DISCOVERY = "/eco/acme/.well-known/openid-configuration"
TOKEN = "/eco/acme/token"
WAIT = 5.0


@pytest.fixture(scope="module")
async def served(
    nats_url: str,
    idp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
) -> AsyncIterator[tuple[IdP, Any]]:
    """The demo provider as ``python -m identity`` serves it, caches warmed by one token."""
    settings, creds, app = await start_idp(
        nats_url, idp_database, tmp_path_factory.mktemp("wire"), demo_hashes
    )
    async with serve_idp(app, settings.port) as url, httpx.AsyncClient(timeout=10) as http:
        # Cached rows and keys outlive the module: a request below only leaves the lean path
        # because of what it is, never because a cache entry just expired.
        app.state.rt.rows.ttl = app.state.rt.keys.ttl = 3600
        idp = IdP(url, settings, creds, http)
        warm = await idp.cc(CLIENT, SCOPE)
        assert warm.status_code == 200, warm.text
        yield idp, app


@dataclass
class Answers:
    """Tokens the protocol took on itself (``identity.wire.issue`` gave it one)."""

    wire: int = 0


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Answers]:
    seen = Answers()
    real = wire.issue

    def counted(*args: Any) -> Any:
        result = real(*args)
        if result is not None:
            seen.wire += 1
        return result

    monkeypatch.setattr(wire, "issue", counted)
    yield seen


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int] = field(default_factory=list)  # 1xx status codes before this one

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k == name]
        assert len(found) <= 1, f"{name} appears {len(found)} times: {self.headers}"
        return found[0] if found else None

    def names(self) -> list[str]:
        return [k for k, _ in self.headers]

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def lean_request(
    idp: IdP, body: str = FORM, *, auth: str | None = None, path: str = TOKEN, **extra: str
) -> bytes:
    """A client-credentials token request with HTTP Basic, as the lean path takes it."""
    headers = {
        "Host": "127.0.0.1",
        "Authorization": auth or _basic(CLIENT, idp.secret(CLIENT)),
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
        **extra,
    }
    return _request("POST", path, headers, body.encode())


def post_request(idp: IdP) -> bytes:
    """The same token request with client_secret_post: the full path's business."""
    body = urlencode(
        {
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_id": CLIENT,
            "client_secret": idp.secret(CLIENT),
        }
    )
    headers = {
        "Host": "127.0.0.1",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
    }
    return _request("POST", TOKEN, headers, body.encode())


def discovery_request() -> bytes:
    return _request("GET", DISCOVERY, {"Host": "127.0.0.1"}, b"")


def _request(
    method: str, path: str, headers: dict[str, str], body: bytes, version: str = "1.1"
) -> bytes:
    head = f"{method} {path} HTTP/{version}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


class Connection:
    """One TCP connection to the provider; writes raw bytes, reads parsed responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, idp: IdP) -> Connection:
        url = urlsplit(idp.url)
        assert url.hostname and url.port
        return cls(*await asyncio.open_connection(url.hostname, url.port))

    async def send(self, *requests: bytes) -> None:
        self.writer.write(b"".join(requests))  # one write: pipelined
        await self.writer.drain()

    async def response(self) -> Response:
        return await asyncio.wait_for(self._response(), WAIT)

    async def _response(self) -> Response:
        interim: list[int] = []
        while True:
            line = await self.reader.readuntil(b"\r\n")
            version, status, _ = line.decode("latin-1").split(" ", 2)
            assert version == "HTTP/1.1", line
            headers: list[tuple[str, str]] = []
            while (raw := await self.reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = raw.decode("latin-1").partition(":")
                headers.append((name.strip().lower(), value.strip()))
            if 100 <= int(status) < 200:
                interim.append(int(status))
                continue
            break
        lengths = [v for k, v in headers if k == "content-length"]
        if lengths:
            body = await self.reader.readexactly(int(lengths[0]))
        elif ("transfer-encoding", "chunked") in headers:
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.read()
        return Response(int(status), headers, body, interim)

    async def closed_by_server(self) -> bool:
        """True once the server has closed the connection with nothing more to read."""
        rest = await asyncio.wait_for(self.reader.read(), WAIT)
        assert rest == b"", rest
        return self.reader.at_eof()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@pytest.fixture
async def connect(served: tuple[IdP, Any]) -> AsyncIterator[Any]:
    """Opens connections to the provider and closes them after the test."""
    opened: list[Connection] = []

    async def open_one() -> Connection:
        conn = await Connection.open(served[0])
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        await conn.close()


def assert_token(resp: Response) -> dict[str, Any]:
    assert resp.status == 200, resp.body
    token = resp.json()
    assert token["access_token"].count(".") == 2 and token["token_type"] == "Bearer"
    assert token["scope"] == SCOPE
    return token


def assert_discovery(resp: Response, idp: IdP) -> None:
    assert resp.status == 200, resp.body
    doc = resp.json()
    assert doc["issuer"] == idp.issuer and "access_token" not in doc


class TestPipelining:
    """Requests sent in one write are answered in the order they were sent."""

    async def test_lean_then_discovery(self, served, answers, connect):
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        await conn.send(lean_request(idp), discovery_request())
        assert_token(await conn.response())
        assert_discovery(await conn.response(), idp)
        assert answers.wire == 1 and app.fast_path.issued == before + 1

    async def test_lean_then_full_path_token_request(self, served, answers, connect):
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        await conn.send(lean_request(idp, "grant_type=client_credentials"), post_request(idp))
        first, second = await conn.response(), await conn.response()
        assert first.status == second.status == 200
        assert first.json()["scope"] != SCOPE  # the default scope: this is the lean one
        assert_token(second)
        assert answers.wire == 1 and app.fast_path.issued == before + 1

    @pytest.mark.parametrize("first", ["discovery", "client_secret_post"])
    async def test_full_path_then_lean(self, served, answers, connect, first):
        """The lean request behind a request in flight waits its turn in uvicorn's queue;
        the ASGI lean path then answers it."""
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        full = discovery_request() if first == "discovery" else post_request(idp)
        await conn.send(full, lean_request(idp, "grant_type=client_credentials"))
        one, two = await conn.response(), await conn.response()
        if first == "discovery":
            assert_discovery(one, idp)
        else:
            assert_token(one)
        assert two.status == 200 and two.json()["scope"] != SCOPE
        assert answers.wire == 0 and app.fast_path.issued == before + 1
        await conn.send(lean_request(idp))  # and the connection is still good for the wire
        assert_token(await conn.response())
        assert answers.wire == 1 and app.fast_path.issued == before + 2

    async def test_two_lean_requests(self, served, answers, connect):
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        await conn.send(lean_request(idp), lean_request(idp, "grant_type=client_credentials"))
        first, second = await conn.response(), await conn.response()
        a, b = assert_token(first), second.json()
        assert second.status == 200 and b["scope"] != SCOPE
        assert a["access_token"] != b["access_token"]
        # the first is the protocol's; the second, queued behind it, the middleware's
        assert answers.wire == 1 and app.fast_path.issued == before + 2

    async def test_many_in_one_write(self, served, answers, connect):
        idp = served[0]
        conn = await connect()
        kinds = ["lean", "discovery", "lean", "post", "lean"] * 2
        requests = {"lean": lean_request(idp), "discovery": discovery_request()}
        requests["post"] = post_request(idp)
        await conn.send(*(requests[k] for k in kinds))
        for kind in kinds:
            resp = await conn.response()
            if kind == "discovery":
                assert_discovery(resp, idp)
            else:
                assert_token(resp)


class TestConnectionClose:
    async def test_lean_answer_closes_when_asked(self, served, answers, connect):
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        await conn.send(lean_request(idp, Connection="close"))
        resp = await conn.response()
        assert_token(resp)
        assert resp.header("connection") == "close"
        assert await conn.closed_by_server()
        assert answers.wire == 1 and app.fast_path.issued == before + 1

    async def test_keep_alive_answer_does_not_close(self, served, answers, connect):
        idp = served[0]
        conn = await connect()
        await conn.send(lean_request(idp))
        resp = await conn.response()
        assert_token(resp)
        assert resp.header("connection") is None
        await conn.send(lean_request(idp))
        assert_token(await conn.response())
        assert answers.wire == 2


class TestTiming:
    async def test_body_in_a_later_packet(self, served, answers, connect):
        idp = served[0]
        conn = await connect()
        headers, _, body = lean_request(idp).partition(b"\r\n\r\n")
        await conn.send(headers + b"\r\n\r\n")
        await asyncio.sleep(0.05)
        await conn.send(body[:5])
        await asyncio.sleep(0.05)
        await conn.send(body[5:])
        assert_token(await conn.response())
        assert answers.wire == 1

    async def test_client_gone_before_the_commit(self, served, answers, connect, monkeypatch):
        """The answer is dropped, not written to a closed transport; the server carries on."""
        idp, app = served
        group = app.state.rt.group
        real = group.submit_then
        held: list[Callable[[], None]] = []  # answers committed, held back by the test

        def holding(rows: list[Any], done: Callable[[BaseException | None], None]) -> None:
            monkeypatch.setattr(group, "submit_then", real)
            real(rows, lambda failure: held.append(lambda: done(failure)))

        monkeypatch.setattr(group, "submit_then", holding)
        conn = await connect()
        before = app.fast_path.issued
        await conn.send(lean_request(idp))
        for _ in range(100):
            if held:
                break
            await asyncio.sleep(0.01)
        assert held and answers.wire == 1
        await conn.close()
        await asyncio.sleep(0.05)  # the server sees the connection go
        held[0]()
        await asyncio.sleep(0.05)
        assert app.fast_path.issued == before  # nothing left, nothing counted
        again = await connect()
        await again.send(lean_request(idp))
        assert_token(await again.response())
        assert app.fast_path.issued == before + 1


class TestDeclined:
    @pytest.mark.parametrize(
        ("body", "auth", "status", "error"),
        [
            (FORM, _basic(CLIENT, "wrong"), 401, "invalid_client"),
            ("grant_type=password&username=a&password=b", None, 400, "unsupported_grant_type"),
            (FORM + "&resource=urn%3Ax", None, 200, None),
        ],
        ids=["wrong-secret", "password-grant", "extra-parameter"],
    )
    async def test_full_path_answers_and_the_connection_stays_usable(
        self, served, answers, connect, body, auth, status, error
    ):
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        await conn.send(lean_request(idp, body, auth=auth))
        resp = await conn.response()
        assert resp.status == status, resp.body
        if error is not None:
            assert resp.json()["error"] == error
            assert "access_token" not in resp.json()
        else:
            assert_token(resp)
        assert answers.wire == 0 and app.fast_path.issued == before
        await conn.send(lean_request(idp))  # same connection: the next one is lean again
        assert_token(await conn.response())
        assert answers.wire == 1 and app.fast_path.issued == before + 1


class TestAuditCommitFails:
    async def test_503_problem_and_close(self, served, answers, connect, monkeypatch):
        idp, app = served
        group = app.state.rt.group
        real = group.submit_then
        calls: list[int] = []

        def failing(rows: list[Any], done: Callable[[BaseException | None], None]) -> None:
            calls.append(len(rows))
            monkeypatch.setattr(group, "submit_then", real)  # one call only
            failure = RuntimeError("injected: the outbox is unavailable")
            asyncio.get_running_loop().call_soon(done, failure)

        monkeypatch.setattr(group, "submit_then", failing)
        conn = await connect()
        before = app.fast_path.issued
        await conn.send(lean_request(idp))
        resp = await conn.response()
        assert calls == [1] and answers.wire == 1
        assert resp.status == 503
        assert resp.header("content-type") == "application/problem+json"
        assert resp.header("connection") == "close"
        problem = resp.json()
        assert problem["status"] == 503 and "access_token" not in problem
        assert b"eyJ" not in resp.body
        assert await conn.closed_by_server()
        assert app.fast_path.issued == before
        # the seam is restored and the next client gets its token
        again = await connect()
        await again.send(lean_request(idp))
        assert_token(await again.response())
        assert app.fast_path.issued == before + 1

    async def test_failure_does_not_answer_a_request_pipelined_behind(
        self, served, answers, connect, monkeypatch
    ):
        """The connection closes after the 503: a pipelined request is not answered out of
        turn (nor at all) on it."""
        idp, app = served
        group = app.state.rt.group
        real = group.submit_then

        def failing(rows: list[Any], done: Callable[[BaseException | None], None]) -> None:
            monkeypatch.setattr(group, "submit_then", real)
            asyncio.get_running_loop().call_soon(done, RuntimeError("injected"))

        monkeypatch.setattr(group, "submit_then", failing)
        conn = await connect()
        await conn.send(lean_request(idp), discovery_request())
        resp = await conn.response()
        assert resp.status == 503 and resp.header("connection") == "close"
        assert await conn.closed_by_server()


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


class TestNotForTheWire:
    """Requests the protocol leaves to uvicorn's own handling still get their token."""

    async def test_expect_100_continue(self, served, answers, connect):
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        head = lean_request(idp, Expect="100-continue")
        headers, _, body = head.partition(b"\r\n\r\n")
        await conn.send(headers + b"\r\n\r\n")
        resp = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), WAIT)
        assert resp == b"HTTP/1.1 100 Continue\r\n\r\n"  # asked for the body, as uvicorn does
        await conn.send(body)
        assert_token(await conn.response())
        assert answers.wire == 0 and app.fast_path.issued == before + 1  # the middleware's

    @pytest.mark.parametrize(
        ("case", "middleware"),
        [
            ("query", 0),  # the ASGI lean path leaves a query string to the full path too
            ("percent", 1),
            ("expect", 1),
            ("http10", 1),
            ("chunked", 0),  # so does the middleware: a Transfer-Encoding header declines
        ],
    )
    async def test_not_answered_by_the_protocol(self, served, answers, connect, case, middleware):
        idp, app = served
        conn = await connect()
        before = app.fast_path.issued
        auth = _basic(CLIENT, idp.secret(CLIENT))
        if case == "query":
            request = lean_request(idp, path=TOKEN + "?x=1")
        elif case == "percent":
            request = lean_request(idp, path="/eco/acme/%74oken")
        elif case == "expect":
            request = lean_request(idp, Expect="100-continue")
        elif case == "http10":
            headers = {
                "Host": "127.0.0.1",
                "Authorization": auth,
                "Content-Type": "application/x-www-form-urlencoded",
                "Content-Length": str(len(FORM)),
            }
            request = _request("POST", TOKEN, headers, FORM.encode(), version="1.0")
        else:
            headers = {
                "Host": "127.0.0.1",
                "Authorization": auth,
                "Content-Type": "application/x-www-form-urlencoded",
                "Transfer-Encoding": "chunked",
            }
            request = _request("POST", TOKEN, headers, _chunked(FORM.encode()))
        await conn.send(request)
        resp = await conn.response()
        assert_token(resp)
        assert answers.wire == 0
        assert app.fast_path.issued == before + middleware
        if case == "expect":
            assert resp.interim == [100]
        if case == "http10":
            assert resp.header("connection") == "close"
            assert await conn.closed_by_server()


class TestSameHeadersAsTheFullPath:
    async def test_default_and_fixed_headers(self, served, answers, connect):
        idp = served[0]
        conn = await connect()
        await conn.send(lean_request(idp), post_request(idp))
        lean, full = await conn.response(), await conn.response()
        assert answers.wire == 1
        assert_token(lean) and assert_token(full)
        for name in ("content-type", "cache-control", "pragma", "date", "server"):
            assert (name in lean.names()) == (name in full.names()), name
        for name in ("content-type", "cache-control", "pragma", "server"):
            assert lean.header(name) == full.header(name), name
        assert lean.header("content-type") == "application/json"
        assert lean.header("date") is not None and full.header("date") is not None
        lean_date = parsedate_to_datetime(lean.header("date") or "")
        full_date = parsedate_to_datetime(full.header("date") or "")
        assert abs((lean_date - full_date).total_seconds()) <= 2
        assert lean.header("content-length") == str(len(lean.body))
        assert list(lean.json()) == list(full.json())
        # nothing the full path leaves out, and no header twice
        assert sorted(lean.names()) == sorted(full.names())
        assert len(lean.names()) == len(set(lean.names()))
