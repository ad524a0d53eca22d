"""Key rotation with overlap, keys encrypted at rest, the admin API and its denials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select, update

from identity.cli import commands
from identity.domain.crypto import Sealer
from identity.store import models
from mesh.db import Database
from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.conftest import IdP
from tests.support.identity import refresh_grant
from tests.support.tokens import TokenFactory


@pytest.fixture(scope="module")
async def olivia(idp: IdP) -> str:
    """An operator's access token (scope admin)."""
    return str((await idp.person_tokens("olivia"))["access_token"])


async def _admin(idp: IdP, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return await idp.http.request(
        method, f"{idp.issuer}/admin{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def _kids(idp: IdP, alg: str = "ES256") -> list[str]:
    keys = (await idp.http.get(f"{idp.issuer}/jwks")).json()["keys"]
    return [k["kid"] for k in keys if k["alg"] == alg]


class TestKeyRotation:
    async def test_rotation_keeps_old_tokens_valid_and_publishes_before_use(
        self, idp: IdP, olivia: str
    ) -> None:
        before = await _kids(idp)
        old_token = (await idp.cc("northwind-backend", "directory:read")).json()["access_token"]
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        upcoming = [k for k in before if k != old_kid]
        assert len(upcoming) == 1, "the next key is published before it signs"

        resp = await _admin(idp, olivia, "POST", "/keys/rotate")
        assert resp.status_code == 200, resp.text
        assert resp.json()["active"] == upcoming[0]

        new_token = (await idp.cc("northwind-backend", "directory:read")).json()["access_token"]
        assert jwt.get_unverified_header(new_token)["kid"] == upcoming[0]
        after = await _kids(idp)
        assert old_kid in after and upcoming[0] in after and len(after) == 3
        async with httpx.AsyncClient() as http:
            verifier = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)
            assert (await verifier.verify(old_token)).client_id == "northwind-backend"
            assert (await verifier.verify(new_token)).client_id == "northwind-backend"

    async def test_private_keys_are_encrypted_at_rest(self, idp: IdP) -> None:
        db = Database(idp.settings.database_url, models.metadata)
        try:
            async with db.sessions() as s:
                rows = (await s.execute(select(models.SigningKey))).scalars().all()
        finally:
            await db.dispose()
        assert rows
        for row in rows:
            assert "PRIVATE KEY" not in row.private_enc
            assert b"PRIVATE KEY" in Sealer(idp.settings.key_encryption_secret).open(
                row.private_enc, row.kid.encode()
            )
            with pytest.raises(InvalidTag):
                Sealer("another-secret").open(row.private_enc, row.kid.encode())

    async def test_retired_key_leaves_jwks_once_its_tokens_expired(
        self, idp: IdP, olivia: str
    ) -> None:
        rotated = (await _admin(idp, olivia, "POST", "/keys/rotate")).json()
        retired = rotated["retired"]
        assert retired in await _kids(idp)
        db = Database(idp.settings.database_url, models.metadata)
        try:
            async with db.transaction() as s:
                await s.execute(
                    update(models.SigningKey)
                    .where(models.SigningKey.kid == retired)
                    .values(retire_until=datetime.now(UTC) - timedelta(seconds=1))
                )
        finally:
            await db.dispose()
        await _admin(idp, olivia, "POST", "/partners", {"slug": "refresh-jwks", "name": "x"})
        kids = await _kids(idp)
        assert retired not in kids and rotated["active"] in kids and rotated["next"] in kids

    async def test_cli_rotation(self, idp: IdP) -> None:
        result = await commands.rotate_keys(idp.settings, "acme")
        assert result["active"] and result["next"] and result["active"] != result["next"]
        with pytest.raises(commands.CliError):
            await commands.rotate_keys(idp.settings, "nowhere")


class TestAdminApi:
    async def test_operator_creates_partner_and_person(self, idp: IdP, olivia: str) -> None:
        resp = await _admin(
            idp, olivia, "POST", "/partners", {"slug": "tailspin", "name": "Tailspin"}
        )
        assert resp.status_code == 201 and resp.json()["verified"] is False
        dup = await _admin(idp, olivia, "POST", "/partners", {"slug": "tailspin", "name": "Again"})
        assert dup.status_code == 409 and dup.json()["code"] == "conflict"
        person = await _admin(
            idp,
            olivia,
            "POST",
            "/people",
            {
                "username": "tia",
                "partner": "tailspin",
                "name": "Tia Tailspin",
                "roles": ["partner_admin", "member"],
                "password": "a-long-password-1",
            },
        )
        assert person.status_code == 201, person.text
        listed = await _admin(idp, olivia, "GET", "/people?partner=tailspin")
        assert [p["username"] for p in listed.json()] == ["tia"]

    async def test_bad_input_is_coded_and_writes_nothing(self, idp: IdP, olivia: str) -> None:
        resp = await _admin(
            idp,
            olivia,
            "POST",
            "/people",
            {"username": "ghost", "partner": "no-such-partner", "name": "G"},
        )
        assert resp.status_code == 404
        resp = await _admin(
            idp,
            olivia,
            "POST",
            "/people",
            {"username": "ghost", "partner": "northwind", "name": "G", "roles": ["king"]},
        )
        assert resp.status_code == 422 and resp.json()["code"] == "validation_failed"
        listed = await _admin(idp, olivia, "GET", "/people")
        assert "ghost" not in [p["username"] for p in listed.json()]

    async def test_broker_may_verify_partners_but_not_create_them(
        self, idp: IdP, olivia: str
    ) -> None:
        bruno = (await idp.person_tokens("bruno"))["access_token"]
        await _admin(idp, olivia, "POST", "/partners", {"slug": "wingtip", "name": "Wingtip"})
        ok = await _admin(idp, bruno, "POST", "/partners/wingtip/verification", {"verified": True})
        assert ok.status_code == 200 and ok.json()["verified"] is True
        denied = await _admin(idp, bruno, "POST", "/partners", {"slug": "x1", "name": "X"})
        assert denied.status_code == 403

    async def test_partner_admin_member_and_backend_are_forbidden(self, idp: IdP) -> None:
        """Operator routes refuse them all; the people routes admit a partner admin for its
        own company only (tests/identity/test_company_admin.py), never a back-end."""
        nadia = (await idp.person_tokens("nadia"))["access_token"]
        backend = (await idp.cc("northwind-backend")).json()["access_token"]
        for token, path in ((nadia, "/clients"), (backend, "/clients"), (backend, "/people")):
            resp = await _admin(idp, token, "GET", path)
            assert resp.status_code == 403 and resp.json()["code"] == "forbidden"

    async def test_no_token_or_foreign_token_is_unauthenticated(
        self, idp: IdP, tokens: TokenFactory
    ) -> None:
        assert (await idp.http.get(f"{idp.issuer}/admin/people")).status_code == 401
        forged = tokens.mint(eco="acme", roles=["operator"], scope="admin")  # another signer
        assert (await _admin(idp, forged, "GET", "/people")).status_code == 401

    async def test_deactivated_person_loses_refresh(self, idp: IdP, olivia: str) -> None:
        felix = await idp.person_tokens("felix")
        people = (await _admin(idp, olivia, "GET", "/people?partner=fabrikam")).json()
        felix_id = next(p["id"] for p in people if p["username"] == "felix")
        resp = await _admin(idp, olivia, "PATCH", f"/people/{felix_id}", {"active": False})
        assert resp.status_code == 200 and resp.json()["active"] is False
        refresh = await refresh_grant(idp.http, idp.issuer, felix["refresh_token"])
        assert refresh.json()["error"] == "invalid_grant"
        await _admin(idp, olivia, "PATCH", f"/people/{felix_id}", {"active": True})


class TestLifetimes:
    async def test_ecosystem_access_lifetime_applies_to_new_tokens(
        self, idp: IdP, olivia: str
    ) -> None:
        resp = await _admin(idp, olivia, "PATCH", "/ecosystem", {"access_ttl": 120})
        assert resp.status_code == 200 and resp.json()["access_ttl"] == 120
        try:
            token = (await idp.cc("contoso-backend", "directory:read")).json()
            assert token["expires_in"] == 120
            claims = jwt.decode(token["access_token"], options={"verify_signature": False})
            assert claims["exp"] - claims["iat"] == 120
        finally:
            await _admin(idp, olivia, "PATCH", "/ecosystem", {"access_ttl": 900})
        bad = await _admin(idp, olivia, "PATCH", "/ecosystem", {"access_ttl": 5})
        assert bad.status_code == 422


class TestAccessTokenAlgorithm:
    async def test_es256_by_default_and_rs256_on_request_both_verifiable(
        self, idp: IdP, olivia: str
    ) -> None:
        async def token() -> str:
            resp = await idp.cc("contoso-backend", "directory:read")
            assert resp.status_code == 200, resp.text
            return str(resp.json()["access_token"])

        es = await token()
        assert jwt.get_unverified_header(es)["alg"] == "ES256"
        assert jwt.get_unverified_header(es)["kid"] in await _kids(idp, "ES256")
        resp = await _admin(idp, olivia, "PATCH", "/ecosystem", {"access_token_alg": "RS256"})
        assert resp.status_code == 200 and resp.json()["access_token_alg"] == "RS256"
        try:
            rs = await token()
            assert jwt.get_unverified_header(rs)["alg"] == "RS256"
            assert jwt.get_unverified_header(rs)["kid"] in await _kids(idp, "RS256")
            async with httpx.AsyncClient() as http:
                verifier = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)
                for t in (es, rs):  # tokens of both algorithms stay valid until they expire
                    assert (await verifier.verify(t)).client_id == "contoso-backend"
                    intro = await idp.http.post(
                        f"{idp.issuer}/introspect",
                        data={"token": t},
                        auth=("northwind-backend", idp.secret("northwind-backend")),
                    )
                    assert intro.json()["active"] is True
        finally:
            await _admin(idp, olivia, "PATCH", "/ecosystem", {"access_token_alg": "ES256"})
        assert jwt.get_unverified_header(await token())["alg"] == "ES256"

    async def test_unknown_algorithm_is_refused_and_changes_nothing(
        self, idp: IdP, olivia: str
    ) -> None:
        for alg in ("HS256", "none", "PS256"):
            bad = await _admin(idp, olivia, "PATCH", "/ecosystem", {"access_token_alg": alg})
            assert bad.status_code == 422, bad.text
            assert bad.headers["content-type"].startswith("application/problem+json")
        now = await _admin(idp, olivia, "GET", "/ecosystem")
        assert now.json()["access_token_alg"] == "ES256"

    async def test_only_operators_choose_it(self, idp: IdP) -> None:
        nadia = (await idp.person_tokens("nadia"))["access_token"]
        resp = await _admin(idp, nadia, "PATCH", "/ecosystem", {"access_token_alg": "RS256"})
        assert resp.status_code == 403

    async def test_cli_sets_it(self, idp: IdP, olivia: str) -> None:
        result = await commands.set_access_token_alg(idp.settings, "acme", "RS256")
        try:
            assert result == {"eco": "acme", "access_token_alg": "RS256"}
            now = await _admin(idp, olivia, "GET", "/ecosystem")
            assert now.json()["access_token_alg"] == "RS256"
            with pytest.raises(commands.CliError):
                await commands.set_access_token_alg(idp.settings, "acme", "HS256")
            with pytest.raises(commands.CliError):
                await commands.set_access_token_alg(idp.settings, "nowhere", "ES256")
        finally:
            await commands.set_access_token_alg(idp.settings, "acme", "ES256")
