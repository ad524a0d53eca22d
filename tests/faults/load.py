"""Steady mixed load on a :class:`~tests.support.topology.Topology`, and what it proves.

Writers post to forum threads (collaboration); each post is an event that profile turns
into the author's tag cloud, so every acknowledged write has a consequence in another
service. Readers read threads, cards, the directory and the connector catalogue, so
every service takes requests. The client balances over the gateway replicas itself.

Afterwards :meth:`Drill.reconcile` compares three things: the posts the gateway
acknowledged, the posts collaboration holds (the truth: it also shows what requests of
unknown outcome did) and the documents profile counted into each author's cloud.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from identity.cli.devclient import login
from tests.support.topology import ECOSYSTEM, Topology

BASE = f"/v1/ecosystems/{ECOSYSTEM}"
CLI_CLIENT, CLI_REDIRECT = "mesh-cli", "http://127.0.0.1:8099/callback"
PASSWORD = "partnermesh-demo"
SCOPE = (
    "openid profile:read profile:write directory:read forum:read forum:write "
    "connector:read connector:admin connector:invoke matching:read admin broker:curate"
)
WRITERS = ("nadia", "carlos", "fatima")
READER = "bruno"
OPERATOR = "olivia"
ARTIFACTS = Path("test-artifacts") / "faults"


class MeshClient:
    """Balances requests over the gateway replicas, round robin.

    A request the client could not even send (connection refused) goes to the next
    replica; a read that broke mid-way is tried once more elsewhere. A write that broke
    after it was sent is not repeated: its outcome is unknown, and the caller says so.
    """

    def __init__(self, gateways: list[str], timeout: float = 15.0) -> None:
        self.gateways = gateways
        self.http = httpx.AsyncClient(timeout=timeout)
        self._turn = itertools.count()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self, method: str, path: str, token: str, json: Any = None, params: Any = None
    ) -> httpx.Response:
        start = next(self._turn)
        read = method == "GET"
        last: Exception | None = None
        for i in range(len(self.gateways)):
            url = self.gateways[(start + i) % len(self.gateways)] + path
            try:
                return await self.http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.ConnectError as exc:
                last = exc
            except httpx.TransportError as exc:
                if not read:
                    raise
                last = exc
        assert last is not None
        raise last


@dataclass
class Outcome:
    t: float
    op: str
    status: int  # 0: no HTTP answer
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Writer:
    username: str
    token: str
    person: str
    thread: str = ""
    acked: dict[str, float] = field(default_factory=dict)  # post id -> ack time
    unknown: int = 0  # sent, no clear answer: may or may not have been applied


@dataclass
class Reconciliation:
    """Over all writers: posts acknowledged, documents held by collaboration (threads and
    posts) and documents counted by profile."""

    acked: int
    held: int
    counted: int
    lost_writes: list[str]  # acknowledged posts collaboration does not have
    missing_events: int  # posts held by collaboration that profile never counted
    applied_twice: int  # profile counted more documents than exist

    def as_dict(self) -> dict[str, Any]:
        return {
            "acked": self.acked,
            "held": self.held,
            "counted": self.counted,
            "lost_writes": len(self.lost_writes),
            "events_missing": self.missing_events,
            "applied_twice": self.applied_twice,
        }


class Drill:
    """Load, a progress monitor and the end-of-drill checks for one topology."""

    def __init__(self, topology: Topology, write_interval: float = 0.25) -> None:
        self.topology = topology
        self.client = MeshClient(topology.gateway_urls)
        self.write_interval = write_interval
        self.t0 = time.monotonic()
        self.writers: list[Writer] = []
        self.reader_token = ""
        self.operator_token = ""
        self.outcomes: list[Outcome] = []
        self.progress: list[tuple[float, int, int]] = []  # (t, acked so far, counted)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- set-up -------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Sign the people in, and give each writer its own thread (and cloud)."""
        async with httpx.AsyncClient(timeout=30) as http:
            tokens = {}
            for username in (*WRITERS, READER, OPERATOR):
                result = await login(
                    http, self.topology.issuer, CLI_CLIENT, username, PASSWORD, CLI_REDIRECT, SCOPE
                )
                tokens[username] = result["access_token"]
        self.reader_token, self.operator_token = tokens[READER], tokens[OPERATOR]
        category = {"slug": "drill", "name": "Fault drill", "description": "steady load"}
        resp = await self.client.request(
            "POST", f"{BASE}/forums/categories", self.operator_token, category
        )
        assert resp.status_code in (201, 409), resp.text
        for username in WRITERS:
            token = tokens[username]
            writer = Writer(
                username, token, str(jwt.decode(token, options={"verify_signature": False})["sub"])
            )
            body = {"title": f"{username} under load", "body": f"Steady writes by {username}."}
            resp = await self.client.request(
                "POST", f"{BASE}/forums/categories/drill/threads", token, body
            )
            assert resp.status_code == 201, resp.text
            writer.thread = resp.json()["id"]
            self.writers.append(writer)

    # -- load -----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        for writer in self.writers:
            self._tasks.append(asyncio.create_task(self._write(writer)))
        self._tasks.append(asyncio.create_task(self._read()))
        self._tasks.append(asyncio.create_task(self._monitor()))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        self._tasks.clear()

    async def run_for(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _write(self, writer: Writer) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            text = f"Drill note {n} from {writer.username}: capacity update number {n}."
            path = f"{BASE}/forums/threads/{writer.thread}/posts"
            try:
                resp = await self.client.request("POST", path, writer.token, {"body": text})
            except httpx.ConnectError as exc:  # sent nowhere: not applied
                self.outcomes.append(Outcome(self.now(), "write", 0, repr(exc)))
            except httpx.TransportError as exc:
                writer.unknown += 1
                self.outcomes.append(Outcome(self.now(), "write", 0, repr(exc)))
            else:
                self.outcomes.append(
                    Outcome(self.now(), "write", resp.status_code, resp.text[:200])
                )
                if resp.status_code == 201:
                    writer.acked[resp.json()["id"]] = self.now()
                elif resp.status_code >= 500:
                    writer.unknown += 1
            await self.run_for(self.write_interval)

    async def _read(self) -> None:
        reads: list[tuple[str, Callable[[], str]]] = [
            ("read thread", lambda: f"{BASE}/forums/threads/{self.writers[0].thread}"),
            ("read card", lambda: f"{BASE}/people/{self.writers[1].person}/card"),
            ("read directory", lambda: f"{BASE}/directory"),
            ("read catalogue", lambda: f"{BASE}/catalogue"),
        ]
        for op, path in itertools.cycle(reads):
            if self._stop.is_set():
                return
            try:
                resp = await self.client.request("GET", path(), self.reader_token)
                self.outcomes.append(Outcome(self.now(), op, resp.status_code, resp.text[:200]))
            except httpx.TransportError as exc:
                self.outcomes.append(Outcome(self.now(), op, 0, repr(exc)))
            await self.run_for(0.1)

    async def _monitor(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                counted = sum([await self.counted(w) for w in self.writers])
                acked = sum(len(w.acked) for w in self.writers)
                self.progress.append((self.now(), acked, counted))
            await self.run_for(1.0)

    # -- checks -----------------------------------------------------------------------------

    async def counted(self, writer: Writer) -> int:
        """Documents profile counted into the writer's cloud (its thread and its posts)."""
        resp = await self.client.request(
            "GET", f"{BASE}/people/{writer.person}/card", self.reader_token
        )
        resp.raise_for_status()
        return int(resp.json()["cloud"]["posts"])

    async def held(self, writer: Writer) -> set[str]:
        """Ids of the posts collaboration holds in the writer's thread."""
        ids: set[str] = set()
        offset = 0
        while True:
            resp = await self.client.request(
                "GET",
                f"{BASE}/forums/threads/{writer.thread}",
                self.reader_token,
                params={"limit": 100, "offset": offset},
            )
            resp.raise_for_status()
            posts = resp.json()["posts"]
            ids.update(p["id"] for p in posts if p["author"] == writer.person)
            if len(posts) < 100:
                return ids
            offset += 100

    async def reconcile(self) -> Reconciliation:
        acked = held = counted = 0
        lost: list[str] = []
        for writer in self.writers:
            have = await self.held(writer)
            lost += [post for post in writer.acked if post not in have]
            acked += len(writer.acked)
            held += len(have) + 1  # the thread is a document too
            counted += await self.counted(writer)
        return Reconciliation(
            acked=acked,
            held=held,
            counted=counted,
            lost_writes=lost,
            missing_events=max(0, held - counted),
            applied_twice=max(0, counted - held),
        )

    async def settle(self, timeout: float) -> tuple[Reconciliation, float | None]:
        """Reconcile until profile counted every post collaboration holds, or ``timeout``;
        returns the last reconciliation and when it settled (None: it did not)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = await self.reconcile()
            except (httpx.HTTPError, KeyError) as exc:
                result = None
                error = exc
            if result is not None and result.held == result.counted:
                return result, self.now()
            if time.monotonic() > deadline:
                if result is None:
                    raise AssertionError(f"could not reconcile: {error!r}")
                return result, None
            await asyncio.sleep(1.0)

    # -- revocation -------------------------------------------------------------------------

    async def backend_token(self) -> tuple[str, tuple[str, str]]:
        """A fresh client-credentials access token of a partner back-end, and its client
        credentials (to revoke it with)."""
        creds = json.loads(self.topology.credentials_path.read_text())
        client = creds["clients"]["northwind-backend"]
        auth = (client["client_id"], client["client_secret"])
        async with httpx.AsyncClient(timeout=30) as http:
            resp = await http.post(
                f"{self.topology.issuer}/token",
                data={"grant_type": "client_credentials", "scope": "mesh:ping"},
                auth=auth,
            )
        resp.raise_for_status()
        return str(resp.json()["access_token"]), auth

    async def revoke(self, token: str, auth: tuple[str, str]) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            resp = await http.post(
                f"{self.topology.issuer}/revoke",
                data={"token": token, "token_type_hint": "access_token"},
                auth=auth,
            )
        assert resp.status_code == 200, resp.text

    async def echo_statuses(self, token: str) -> list[int]:
        """What each gateway replica answers ``token`` on the echo route (0: no answer)."""
        statuses = []
        for gateway in self.topology.gateway_urls:
            try:
                resp = await self.client.http.get(
                    f"{gateway}{BASE}/echo",
                    params={"message": "drill"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                statuses.append(resp.status_code)
            except httpx.TransportError:
                statuses.append(0)
        return statuses

    async def wait_statuses(
        self, token: str, want: int, timeout: float
    ) -> tuple[list[int], float | None]:
        """Poll until every gateway answers ``want``; the last answers and how long it took."""
        start = time.monotonic()
        while True:
            statuses = await self.echo_statuses(token)
            if all(s == want for s in statuses):
                return statuses, time.monotonic() - start
            if time.monotonic() - start > timeout:
                return statuses, None
            await asyncio.sleep(0.5)

    # -- figures ----------------------------------------------------------------------------

    def failures(self, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        return Counter(o.op for o in self.outcomes if since <= o.t <= until and not o.ok)

    def summary(self) -> dict[str, Any]:
        by_op: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            entry = by_op.setdefault(o.op, {"ok": 0, "failed": 0})
            entry["ok" if o.ok else "failed"] += 1
        statuses = Counter(f"{o.op} {o.status}" for o in self.outcomes if not o.ok)
        return {
            "requests": by_op,
            "failed_by_status": dict(statuses),
            "unknown_outcome_writes": sum(w.unknown for w in self.writers),
            "restarted_at_start": self.topology.restarted_at_start,
        }

    def failure_window(self, since: float) -> tuple[float, float] | None:
        """First and last failed request at or after ``since`` (seconds since start)."""
        times = [o.t for o in self.outcomes if o.t >= since and not o.ok]
        return (min(times), max(times)) if times else None

    def caught_up_at(self, since: float) -> float | None:
        """When profile had counted every post acknowledged up to ``since``, from the
        monitor's samples (None: not within the drill)."""
        acked_then = sum(1 for w in self.writers for t in w.acked.values() if t <= since)
        base = len(self.writers)  # one thread each
        for t, _acked, counted in self.progress:
            if t >= since and counted - base >= acked_then:
                return t
        return None


async def watch_readiness(
    topology: Topology, drill: Drill, kind: str, log: dict[str, list[tuple[float, int]]]
) -> None:
    """Record each ``kind`` replica's /readyz status (0: no answer) when it changes."""
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            for process in topology.of_kind(kind):
                try:
                    status = (await http.get(process.ready_url)).status_code
                except httpx.HTTPError:
                    status = 0
                seen = log.setdefault(process.name, [])
                if not seen or seen[-1][1] != status:
                    seen.append((round(drill.now(), 1), status))
            await asyncio.sleep(0.5)


def first(changes: list[tuple[float, int]], since: float, ready: bool) -> float | None:
    """When the status first was (not) 200 at or after ``since``."""
    return next((t for t, s in changes if t >= since and (s == 200) == ready), None)


def record(name: str, figures: dict[str, Any]) -> None:
    """Print a drill's figures (``pytest -s``) and keep them under test-artifacts/faults/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2, sort_keys=True, default=str)
    (ARTIFACTS / f"{name}.json").write_text(text + "\n")
    print(f"\n=== {name}\n{text}", flush=True)
