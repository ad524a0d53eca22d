"""The token endpoint's lean client-credentials path: what it answers is what the full path
would answer, what it is unsure of goes to the full path, and it follows changes.

Every test that talks to the provider runs with the lean path on and off
(``PM_IDENTITY_LEAN``): the answers asserted are the same either way; with it on, the
tests also assert which path answered."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pydantic import TypeAdapter
from sqlalchemy import update

from contracts.claims import Claims
from contracts.v1.identity import AuditEvent
from identity.domain.crypto import digest
from identity.domain.keys import Signer
from identity.domain.tokens import Subject, access_claims, p256_raw_signature, sign_payload
from identity.lean import ids as lean_ids
from identity.lean import request as lean_request
from identity.lean import shortcut, templates
from identity.store import models
from identity.store.cache import TtlCache
from identity.store.transaction import audit_event
from mesh.db import Database
from mesh.outbox import OutboxRow
from tests.identity.conftest import IdP
from tests.support.identity import outbox_events, serve_idp, start_idp

CLIENT = "northwind-backend"
SCOPE = "directory:read profile:read"


@pytest.fixture(scope="module", params=["on", "off"])
async def served(
    request: pytest.FixtureRequest,
    nats_url: str,
    idp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
) -> AsyncIterator[tuple[IdP, Any]]:
    """The demo provider on loopback and its app object (whose lean path counts its tokens),
    with the lean path on (``PM_IDENTITY_LEAN=on``) and off."""
    settings, creds, app = await start_idp(
        nats_url, idp_database, tmp_path_factory.mktemp("fp"), demo_hashes, lean=request.param
    )
    async with serve_idp(app, settings.port) as url, httpx.AsyncClient(timeout=10) as http:
        # Cached rows and keys outlive the module: a request below only leaves the lean path
        # because of what it is or what changed, never because a cache entry just expired.
        app.state.rt.rows.ttl = app.state.rt.keys.ttl = 3600
        yield IdP(url, settings, creds, http), app


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def _post(idp: IdP, body: str, **headers: str) -> httpx.Response:
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    hdrs.setdefault("Authorization", _basic(CLIENT, idp.secret(CLIENT)))
    return await idp.http.post(f"{idp.issuer}/token", content=body, headers=hdrs)


FORM = "grant_type=client_credentials&scope=directory%3Aread+profile%3Aread"


class Lean:
    """Tokens the lean path answered (always 0 with it off: there is no middleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @property
    def issued(self) -> int:
        fast = self.app.fast_path
        return 0 if fast is None else int(fast.issued)

    def answered(self, before: int) -> int:
        """What ``issued`` must be after one more token from the lean path: ``before + 1``
        with it on; with it off the full path answers, and ``before``."""
        return before if self.app.fast_path is None else before + 1


def _needs_lean(app: Any) -> None:
    if app.fast_path is None:
        pytest.skip("about the lean path's own machinery, which is off here")


async def _lean(app: Any, idp: IdP, body: str = FORM, **headers: str) -> httpx.Response:
    """A request the lean path answers, when on (the caches are warmed by the full path
    first); with it off, the same request through the full path."""
    await _post(idp, body, **headers)
    lean = Lean(app)
    before = lean.issued
    resp = await _post(idp, body, **headers)
    assert lean.issued == lean.answered(before), "the lean path did not answer"
    return resp


async def _audited(idp: IdP) -> dict[str, dict[str, Any]]:
    events = await outbox_events(idp.settings.database_url)
    return {
        e["data"]["details"]["jti"]: e
        for e in events
        if e.get("data", {}).get("action") == "token.issued" and "jti" in e["data"]["details"]
    }


class TestSameAnswerAsTheFullPath:
    async def test_token_response_and_audit_event_match(self, served: tuple[IdP, Any]) -> None:
        idp, app = served
        lean = await _lean(app, idp)
        # a body the lean path does not parse (client_id beside HTTP Basic): the full path
        before = Lean(app).issued
        full = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials", "scope": SCOPE, "client_id": CLIENT},
            auth=(CLIENT, idp.secret(CLIENT)),
        )
        assert Lean(app).issued == before
        assert lean.status_code == full.status_code == 200
        for name in ("content-type", "cache-control", "pragma"):
            assert lean.headers[name] == full.headers[name]
        a, b = lean.json(), full.json()
        assert list(a) == list(b) and {k: a[k] for k in a if k != "access_token"} == {
            k: b[k] for k in b if k != "access_token"
        }
        ha, hb = (jwt.get_unverified_header(x["access_token"]) for x in (a, b))
        assert ha == hb and ha["alg"] == "ES256" and ha["typ"] == "at+jwt"
        ca, cb = (
            jwt.decode(x["access_token"], options={"verify_signature": False}) for x in (a, b)
        )
        assert list(ca) == list(cb)
        varying = {"exp", "iat", "jti"}
        assert {k: ca[k] for k in ca if k not in varying} == {
            k: cb[k] for k in cb if k not in varying
        }
        assert ca["exp"] - ca["iat"] == cb["exp"] - cb["iat"] == a["expires_in"]
        assert Claims.model_validate(ca) and Claims.model_validate(cb)
        assert uuid.UUID(ca["jti"]).version == uuid.UUID(cb["jti"]).version == 4
        assert uuid.UUID(ca["jti"]).hex == ca["jti"]
        assert lean.content == json.dumps(a).encode()  # byte for byte what json.dumps writes
        jwks = (await idp.http.get(f"{idp.issuer}/jwks")).json()["keys"]
        key = jwt.PyJWK.from_dict(next(k for k in jwks if k["kid"] == ha["kid"]))
        jwt.decode(a["access_token"], key.key, ["ES256"], audience="partnermesh")
        audited = await _audited(idp)
        ea, eb = audited[ca["jti"]], audited[cb["jti"]]  # each committed before its answer
        assert {k: ea[k] for k in ("type", "ecosystem", "partner", "subject")} == {
            k: eb[k] for k in ("type", "ecosystem", "partner", "subject")
        }
        da, db = ea["data"], eb["data"]
        assert da["details"].pop("jti") and db["details"].pop("jti")
        assert da == db

    async def test_scope_policy_and_default_scope_are_the_full_paths(
        self, served: tuple[IdP, Any]
    ) -> None:
        idp, app = served
        cut = await _lean(app, idp, "grant_type=client_credentials&scope=admin+directory%3Aread")
        assert cut.json()["scope"] == "directory:read"  # admin needs the operator role
        every = await _lean(app, idp, "grant_type=client_credentials")
        full = await idp.cc(CLIENT)  # the same request through httpx's own encoding
        assert every.json()["scope"] == full.json()["scope"]

    async def test_rs256_ecosystems_get_rs256_from_the_lean_path_too(
        self, served: tuple[IdP, Any]
    ) -> None:
        idp, app = served
        olivia = (await idp.person_tokens("olivia"))["access_token"]
        auth = {"Authorization": f"Bearer {olivia}"}
        patch = {"access_token_alg": "RS256"}
        resp = await idp.http.patch(f"{idp.issuer}/admin/ecosystem", json=patch, headers=auth)
        assert resp.status_code == 200
        try:
            lean = await _lean(app, idp)
            token = lean.json()["access_token"]
            header = jwt.get_unverified_header(token)
            assert header["alg"] == "RS256"
            jwks = (await idp.http.get(f"{idp.issuer}/jwks")).json()["keys"]
            key = jwt.PyJWK.from_dict(next(k for k in jwks if k["kid"] == header["kid"]))
            claims = jwt.decode(token, key.key, ["RS256"], audience="partnermesh")
            assert claims["jti"] in await _audited(idp)  # its audit event was committed first
        finally:
            patch = {"access_token_alg": "ES256"}
            await idp.http.patch(f"{idp.issuer}/admin/ecosystem", json=patch, headers=auth)


class TestWhatItLeavesToTheFullPath:
    async def test_a_signature_that_fails_leaves_the_request_to_the_full_path(
        self, served: tuple[IdP, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        idp, app = served
        await _post(idp, FORM)  # warm

        def broken(self: shortcut.Issued) -> str:
            raise RuntimeError("signing failed")

        monkeypatch.setattr(shortcut.Issued, "sign", broken)
        before = Lean(app).issued
        resp = await _post(idp, FORM)
        assert resp.status_code == 200 and resp.json()["access_token"]
        assert Lean(app).issued == before  # the full path signed it

    @pytest.mark.parametrize(
        ("body", "headers", "status", "error"),
        [
            (FORM, {"Authorization": _basic(CLIENT, "wrong")}, 401, "invalid_client"),
            (FORM, {"Authorization": _basic("nobody", "x")}, 401, "invalid_client"),
            ("grant_type=client_credentials&scope=nope", {}, 400, "invalid_scope"),
            ("grant_type=client_credentials&scope=", {}, 200, None),
            ("grant_type=client_credentials&scope=directory%3Aread++x", {}, 400, "invalid_scope"),
            ("grant_type=password&username=a&password=b", {}, 400, "unsupported_grant_type"),
            ("grant_type=client_credentials&grant_type=client_credentials", {}, 200, None),
            (FORM + "&resource=urn%3Ax", {}, 200, None),
            (FORM + "&client_id=" + CLIENT, {}, 200, None),
            (FORM, {"DPoP": "not-a-proof"}, None, None),
            (FORM, {"Content-Type": "text/plain"}, 400, "unsupported_grant_type"),
            (FORM, {"Authorization": "Basic !!!"}, 401, "invalid_client"),
        ],
    )
    async def test_declines_and_the_full_path_answers(
        self,
        served: tuple[IdP, Any],
        body: str,
        headers: dict[str, str],
        status: int | None,
        error: str | None,
    ) -> None:
        idp, app = served
        await _lean(app, idp)  # caches warm: any decline below is the lean path's own choice
        before = Lean(app).issued
        resp = await _post(idp, body, **headers)
        assert Lean(app).issued == before, resp.text
        if status is not None:
            assert resp.status_code == status, resp.text
        if error is not None:
            assert resp.json()["error"] == error
        assert "traceback" not in resp.text.lower()

    async def test_an_audit_commit_that_fails_answers_503_and_issues_nothing(
        self, served: tuple[IdP, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No token leaves without its audit event: a failed commit is a 503 problem."""
        idp, app = served
        _needs_lean(app)
        await _lean(app, idp)
        group = app.state.rt.group

        async def broken(rows: Any, marks: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(group.writer, "write", broken)
        before = Lean(app).issued
        resp = await _post(idp, FORM)
        assert resp.status_code == 503, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["status"] == 503 and "access_token" not in resp.text
        assert Lean(app).issued == before
        monkeypatch.undo()
        assert (await _lean(app, idp)).status_code == 200  # and it recovers

    async def test_query_parameters_go_to_the_full_path(self, served: tuple[IdP, Any]) -> None:
        idp, app = served
        await _lean(app, idp)
        before = Lean(app).issued
        resp = await idp.http.post(
            f"{idp.issuer}/token?scope=admin",
            content=FORM,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": _basic(CLIENT, idp.secret(CLIENT)),
            },
        )
        assert Lean(app).issued == before
        assert resp.status_code == 200 and "admin" not in resp.json()["scope"]

    async def test_a_client_without_the_grant_is_refused_by_the_full_path(
        self, served: tuple[IdP, Any]
    ) -> None:
        idp, app = served
        portal = _basic("portal", idp.secret("portal"))  # confidential, no client_credentials
        await _post(idp, FORM, Authorization=portal)
        before = Lean(app).issued
        resp = await _post(idp, FORM, Authorization=portal)
        assert Lean(app).issued == before
        assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"

    async def test_large_bodies_reach_the_full_path_intact(self, served: tuple[IdP, Any]) -> None:
        idp, app = served
        await _lean(app, idp)
        before = Lean(app).issued
        resp = await _post(idp, FORM + "&pad=" + "x" * 10_000)
        assert Lean(app).issued == before
        assert resp.status_code == 200 and resp.json()["scope"] == SCOPE


class TestItFollowsChanges:
    async def test_a_change_made_elsewhere_stops_the_lean_path_within_the_cache_lifetime(
        self, served: tuple[IdP, Any]
    ) -> None:
        """Another replica (here: the database itself) changes the client's secret: this
        process stops accepting the old one once its cached row expires."""
        idp, app = served
        rt = app.state.rt
        await _lean(app, idp)
        rt.rows.ttl, ttl = 0.3, rt.rows.ttl
        db = Database(idp.settings.database_url, models.metadata)
        try:
            async with db.transaction() as s:
                await s.execute(
                    update(models.Client)
                    .where(models.Client.eco == "acme", models.Client.client_id == CLIENT)
                    .values(secret_hash=digest("a-new-secret-from-elsewhere"))
                )
            for _ in range(100):
                if (await _post(idp, FORM)).status_code == 401:
                    break
                await asyncio.sleep(0.05)
            resp = await _post(idp, FORM)
            assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
            fresh = await _post(
                idp, FORM, Authorization=_basic(CLIENT, "a-new-secret-from-elsewhere")
            )
            assert fresh.status_code == 200
        finally:
            async with db.transaction() as s:
                await s.execute(
                    update(models.Client)
                    .where(models.Client.eco == "acme", models.Client.client_id == CLIENT)
                    .values(secret_hash=digest(idp.secret(CLIENT)))
                )
            await db.dispose()
            rt.rows.ttl = ttl
            rt.rows.forget("acme")

    async def test_a_busy_clients_rows_are_read_again_before_they_expire(
        self, served: tuple[IdP, Any]
    ) -> None:
        """Near the end of their lifetime the lean path has its entries re-read from the
        database (so they do not all lapse at once under load): a change made elsewhere
        is picked up then, while the lean path keeps answering."""
        idp, app = served
        _needs_lean(app)
        rt = app.state.rt
        await _lean(app, idp)
        keys = [("acme",), ("acme", CLIENT)]
        old_client = rt.rows.get(("acme", CLIENT))
        db = Database(idp.settings.database_url, models.metadata)
        try:
            async with db.transaction() as s:
                await s.execute(
                    update(models.Client)
                    .where(models.Client.eco == "acme", models.Client.client_id == CLIENT)
                    .values(secret_hash=digest("a-new-secret-from-elsewhere"))
                )
            for key in keys:  # as if most of their lifetime had passed
                stamp, value = rt.rows._items[key]
                rt.rows._items[key] = (stamp - 0.9 * rt.rows.ttl, value)
            stamp, signer = rt.keys._signers[("acme", "ES256")]
            rt.keys._signers[("acme", "ES256")] = (stamp - 0.9 * rt.keys.ttl, signer)
            await asyncio.sleep(shortcut.CHECK_EVERY)  # the ages are looked at this often
            before = Lean(app).issued
            resp = await _post(idp, FORM)  # still fresh: answered from the cache
            assert resp.status_code == 200 and Lean(app).issued == before + 1
            await asyncio.gather(*app.fast_path._tasks)
            assert all(rt.rows.age(key) < 0.5 * rt.rows.ttl for key in keys)
            assert rt.keys.signer_age("acme", "ES256") < 0.5 * rt.keys.ttl
            assert rt.rows.get(("acme", CLIENT)) is not old_client
            resp = await _post(idp, FORM)  # the re-read row no longer takes the old secret
            assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
            await _lean(app, idp, Authorization=_basic(CLIENT, "a-new-secret-from-elsewhere"))
        finally:
            async with db.transaction() as s:
                await s.execute(
                    update(models.Client)
                    .where(models.Client.eco == "acme", models.Client.client_id == CLIENT)
                    .values(secret_hash=digest(idp.secret(CLIENT)))
                )
            await db.dispose()
            rt.rows.forget("acme")

    def test_a_read_from_before_a_forget_is_not_cached(self) -> None:
        cache = TtlCache()
        generation = cache.generation("acme")
        cache.forget("acme")  # an admin change lands while a refresh is reading
        cache.put_if(generation, ("acme", CLIENT), "stale row")
        assert cache.get(("acme", CLIENT)) is None
        cache.put_if(cache.generation("acme"), ("acme", CLIENT), "fresh row")
        assert cache.get(("acme", CLIENT)) == "fresh row"

    async def test_an_admin_change_here_applies_to_the_very_next_token(
        self, served: tuple[IdP, Any]
    ) -> None:
        idp, app = served
        olivia = (await idp.person_tokens("olivia"))["access_token"]
        auth = {"Authorization": f"Bearer {olivia}"}
        await _lean(app, idp)
        resp = await idp.http.patch(
            f"{idp.issuer}/admin/ecosystem", json={"access_ttl": 300}, headers=auth
        )
        assert resp.status_code == 200
        try:
            await _post(idp, FORM)  # the full path refills the forgotten caches
            lean = await _lean(app, idp)
            assert lean.json()["expires_in"] == 300
        finally:
            await idp.http.patch(
                f"{idp.issuer}/admin/ecosystem", json={"access_ttl": 900}, headers=auth
            )


class TestItsShortcuts:
    """The lean path's hand-written pieces are the library calls they stand for."""

    @pytest.mark.parametrize("partner", [None, "northwind"])
    @pytest.mark.parametrize("scope", [SCOPE, "", 'odd "quoted" \\ scope'])
    def test_issued_row_is_what_audit_event_builds(self, partner: str | None, scope: str) -> None:
        claims = {"sub": "client:northwind-backend", "jti": shortcut._uuid4_hex()}
        if partner:
            claims["partner"] = partner
        events = templates.IssuedEvents()
        first = events.row("acme", CLIENT, claims, scope)
        claims = {**claims, "jti": shortcut._uuid4_hex()}
        lean = events.row("acme", CLIENT, claims, scope)  # from the cached template
        full = audit_event(
            "acme",
            "token.issued",
            actor=CLIENT,
            target=claims["sub"],
            partner=claims.get("partner"),
            grant_type="client_credentials",
            jti=claims["jti"],
            scope=scope,
        )
        parsed = AuditEvent.model_validate_json(lean.payload)
        assert parsed.id == lean.event_id != first.event_id
        assert uuid.UUID(hex=lean.event_id).version == 7
        assert lean.subject == OutboxRow.of(full).subject
        a, b = json.loads(lean.payload), json.loads(full.model_dump_json())
        assert list(a) == list(b)
        varying = {"id", "time"}
        assert {k: a[k] for k in a if k not in varying} == {k: b[k] for k in b if k not in varying}
        assert abs((parsed.time - full.time).total_seconds()) < 5

    @pytest.mark.parametrize("partner", [None, "northwind"])
    @pytest.mark.parametrize("scope", [SCOPE, "", 'odd "quoted" \\ scope', "é"])
    def test_token_payload_is_json_dumps_of_its_claims(
        self, partner: str | None, scope: str
    ) -> None:
        subject = Subject(sub=CLIENT, partner=partner, roles=("member",), is_person=False)
        claims = access_claims("http://x/eco/acme", "partnermesh", "acme", subject, CLIENT, "", 0)
        template = templates.Template(claims)
        jti = shortcut._uuid4_hex()
        filled = {**claims, "exp": 1800000300, "iat": 1800000000, "jti": jti, "scope": scope}
        assert (
            template.payload(1800000300, 1800000000, jti, scope)
            == json.dumps(filled, separators=(",", ":")).encode()
        )

    def test_a_template_refuses_a_mark_it_cannot_place(self) -> None:
        with pytest.raises(ValueError, match="exactly once"):
            templates.cut('{"a":"@@jti@@","b":"@@jti@@"}', ("@@jti@@",))
        with pytest.raises(ValueError, match="exactly once"):
            templates.cut('{"b":2,"a":1}', ("1", "2"))  # not in that order

    def test_p256_signatures_read_in_place_are_decode_dss_signatures(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        ders = [key.sign(str(i).encode(), ec.ECDSA(hashes.SHA256())) for i in range(300)]
        rng = random.Random(7)  # and short r and s (leading zero bytes), rare in real ones
        for bits in (1, 8, 9, 200, 248, 255, 256):
            r, s = rng.getrandbits(bits) | 1, rng.getrandbits(256) | 1
            ders += [encode_dss_signature(r, s), encode_dss_signature(s, r)]
        for der in ders:
            r, s = decode_dss_signature(der)
            assert p256_raw_signature(der) == r.to_bytes(32, "big") + s.to_bytes(32, "big")

    @pytest.mark.parametrize(
        "der", [b"", b"\x30\x06\x02\x01\x01\x02\x01", b"\x31" + bytes(71), b"\x30\x00garbage"]
    )
    def test_what_is_not_a_p256_signature_is_refused_as_decode_dss_signature_refuses(
        self, der: bytes
    ) -> None:
        with pytest.raises(ValueError):
            p256_raw_signature(der)

    def test_a_lean_es256_token_verifies(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        token = sign_payload(Signer("kid-1", "ES256", key), b'{"sub":"x"}')
        assert jwt.decode(token, key.public_key(), ["ES256"]) == {"sub": "x"}

    @pytest.mark.parametrize("micro", [0, 120, 999999])
    def test_event_time_is_written_as_pydantic_writes_it(self, micro: int) -> None:
        now = datetime(2026, 11, 26, 13, 20, 0, micro, tzinfo=UTC)
        assert templates.utc_json(now) == TypeAdapter(datetime).dump_json(now).decode().strip('"')

    def test_jti_is_a_version_4_uuid(self) -> None:
        seen = {shortcut._uuid4_hex() for _ in range(2000)}
        assert len(seen) == 2000
        for jti in seen:
            parsed = uuid.UUID(jti)
            assert parsed.hex == jti and parsed.version == 4
            assert parsed.variant == uuid.RFC_4122

    def test_ids_come_from_the_pool_unrepeated_across_refills(self) -> None:
        drawn = lean_ids.POOL * 3 // 26  # three pools' worth of (jti, event id) pairs
        jtis = [lean_ids.uuid4_hex() for _ in range(drawn)]
        events = [lean_ids.uuid7_hex() for _ in range(drawn)]
        assert len(set(jtis)) == len(set(events)) == drawn
        for value in events:
            parsed = uuid.UUID(value)
            assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
            assert abs(int(value[:12], 16) - time.time() * 1000) < 60_000

    def test_a_forked_child_does_not_repeat_its_parents_ids(self) -> None:
        lean_ids.uuid4_hex()  # the pool holds bytes the child must not hand out again
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its next jti, to the parent
            os.write(write, lean_ids.uuid4_hex().encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        childs = os.read(read, 64).decode()
        os.close(read)
        assert childs != lean_ids.uuid4_hex()  # the parent's next draw from its pool

    @pytest.mark.parametrize("scope", ["", "directory:read", 'a"b\\c', "profile:read openid"])
    def test_issued_body_is_json_dumps_of_the_token_response(self, scope: str) -> None:
        claims = {"exp": 1800000300, "iat": 1800000000, "scope": scope}
        issued = shortcut.Issued(None, claims, b"", OutboxRow("", "", ""), CLIENT)  # type: ignore[arg-type]
        token = {"access_token": "eyJ.x-y_z.s", "token_type": "Bearer", "expires_in": 300}
        assert issued.body("eyJ.x-y_z.s") == json.dumps({**token, "scope": scope}).encode()

    @pytest.mark.parametrize("scope", ["", "directory:read", 'a"b\\c', "profile:read openid"])
    def test_response_body_is_json_dumps(self, scope: str) -> None:
        token = {"access_token": "eyJ.x-y_z.s", "token_type": "Bearer", "expires_in": 300}
        token["scope"] = scope
        assert shortcut.response_body(token) == json.dumps(token).encode()

    @pytest.mark.parametrize(
        "body",
        [
            FORM.encode(),
            b"grant_type=client_credentials",
            b"grant_type=client_credentials&grant_type=client_credentials",
            b"grant_type=client_credentials&scope=a;b",
            b"grant_type=client_credentials&scope=%C3%A9",
            b"grant_type=client_credentials&other=1",
            b"\xff",
        ],
    )
    def test_memoised_form_is_the_parsed_form(self, body: bytes) -> None:
        first, again = lean_request.form_of(body), lean_request.form_of(body)
        assert first == again == lean_request._parse_form(body)
