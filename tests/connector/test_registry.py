"""Back-ends with each authentication kind, the vault, the catalogue, grants, and denials."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.client import call
from mesh.errors import MeshError
from services.connector.models import VaultSecret
from services.connector.vault import Vault
from tests.connector.backends import BackendState
from tests.connector.certs import make_pki
from tests.connector.conftest import Mesh, declare, register
from tests.support.infra import serve_app


async def refused(coro: Awaitable[object]) -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value


async def invoke(
    mesh: Mesh, op: str, who: str = "carlos", claims: dict[str, Any] | None = None, **body: Any
) -> Any:
    return await mesh(c.INVOKE, who, {"operation": op, "input": {}, **body}, **(claims or {}))


class TestAuthKinds:
    async def test_api_key_is_sent_and_never_returned(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None, connector: Any
    ) -> None:
        url, state = backend
        reply = await register(mesh, url, auth={"kind": "api_key", "api_key": state.api_key})
        assert reply.auth_kind == "api_key" and state.api_key not in reply.model_dump_json()
        await declare(mesh, "keyed", "/keyed")
        assert (await invoke(mesh, "fabrikam.keyed", who="fatima")).output["auth"] == "api_key"
        listing = await mesh(c.LIST_BACKENDS, "fatima", {"partner": "fabrikam"})
        assert state.api_key not in listing.model_dump_json()
        async with connector.db.sessions() as s:
            sealed = (await s.scalars(select(VaultSecret))).all()
        assert sealed and all(state.api_key not in v.ciphertext for v in sealed)

    async def test_rotated_credentials_are_used_at_once(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        url, state = backend
        await register(mesh, url, auth={"kind": "api_key", "api_key": "old-key"})
        await declare(mesh, "keyed", "/keyed")
        err = await refused(invoke(mesh, "fabrikam.keyed", who="fatima"))
        assert err.code is ErrorCode.BAD_GATEWAY  # the back-end refused the old key
        rotated = await mesh(
            c.ROTATE_CREDENTIALS,
            "fatima",
            {
                "partner": "fabrikam",
                "backend": "erp",
                "auth": {"kind": "api_key", "api_key": state.api_key},
            },
        )
        assert rotated.credential_version == 2
        assert (await invoke(mesh, "fabrikam.keyed", who="fatima")).status == 200

    async def test_a_moved_back_end_keeps_its_operations(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        url, state = backend
        await register(
            mesh, "http://127.0.0.1:9", auth={"kind": "api_key", "api_key": state.api_key}
        )
        await declare(mesh, "keyed", "/keyed")
        err = await refused(invoke(mesh, "fabrikam.keyed", who="fatima"))
        assert err.code is ErrorCode.BAD_GATEWAY  # nothing listens at the old address
        ref = {"partner": "fabrikam", "backend": "erp"}
        moved = await mesh(c.UPDATE_BACKEND, "fatima", {**ref, "base_url": url})
        assert moved.base_url == url and moved.credential_version == 1
        assert (await invoke(mesh, "fabrikam.keyed", who="fatima")).status == 200
        assert state.hits["/keyed"] == 1
        # The egress guard checks the new address; only the owner's admins move it.
        err = await refused(
            mesh(c.UPDATE_BACKEND, "fatima", {**ref, "base_url": "http://169.254.169.254/"})
        )
        assert err.code is ErrorCode.BAD_REQUEST and "metadata" in err.detail
        err = await refused(mesh(c.UPDATE_BACKEND, "felix", {**ref, "base_url": url}))
        assert err.code is ErrorCode.FORBIDDEN
        err = await refused(mesh(c.UPDATE_BACKEND, "carlos", {**ref, "base_url": url}))
        assert err.code is ErrorCode.FORBIDDEN  # another partner's admin
        err = await refused(mesh(c.UPDATE_BACKEND, "fatima", {**ref, "backend": "nope"}))
        assert err.code is ErrorCode.NOT_FOUND
        described = await mesh(c.UPDATE_BACKEND, "fatima", {**ref, "description": "moved"})
        assert (described.base_url, described.description) == (url, "moved")

    async def test_oauth2_client_credentials(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        url, state = backend
        await register(
            mesh,
            url,
            auth={
                "kind": "oauth2_client_credentials",
                "token_url": f"{url}/oauth/token",
                "client_id": state.client_id,
                "client_secret": state.client_secret,
            },
        )
        await declare(mesh, "data", "/oauth/data")
        for _ in range(2):
            assert (await invoke(mesh, "fabrikam.data", who="fatima")).output["auth"] == "oauth2"
        assert state.token_requests == 1  # the token is cached until it expires

    async def test_oauth2_wrong_secret_fails(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        url, state = backend
        await register(
            mesh,
            url,
            auth={
                "kind": "oauth2_client_credentials",
                "token_url": f"{url}/oauth/token",
                "client_id": state.client_id,
                "client_secret": "wrong",
            },
        )
        await declare(mesh, "data", "/oauth/data")
        err = await refused(invoke(mesh, "fabrikam.data", who="fatima"))
        assert err.code is ErrorCode.BAD_GATEWAY and "token endpoint" in err.detail

    async def test_mtls_client_certificate(
        self, mesh: Mesh, loopback_allowed: None, connector: Any, tmp_path: Path
    ) -> None:
        pki = make_pki()
        app = FastAPI()

        @app.get("/secure")
        async def secure() -> dict[str, bool]:
            return {"mtls": True}

        files = pki.write(tmp_path)
        async with serve_app(app, None, ssl_cert_reqs=ssl.CERT_REQUIRED, **files) as url:
            await register(
                mesh,
                url,
                name="secure",
                server_ca_pem=pki.ca_pem,
                auth={
                    "kind": "mtls",
                    "client_cert_pem": pki.client_cert_pem,
                    "client_key_pem": pki.client_key_pem,
                },
            )
            await register(mesh, url, name="nocert", server_ca_pem=pki.ca_pem)
            await declare(mesh, "secure", "/secure", backend="secure")
            await declare(mesh, "nocert", "/secure", backend="nocert")
            assert (await invoke(mesh, "fabrikam.secure", who="fatima")).output == {"mtls": True}
            err = await refused(invoke(mesh, "fabrikam.nocert", who="fatima"))
            assert err.code is ErrorCode.BAD_GATEWAY
            listing = await mesh(c.LIST_BACKENDS, "fatima", {"partner": "fabrikam"})
            assert "PRIVATE KEY" not in listing.model_dump_json()
            # Close kept-alive TLS connections first: a server stopping under them waits
            # for their close_notify.
            await connector.connector.invoker.aclose()

    async def test_mtls_needs_https(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        err = await refused(
            register(
                mesh,
                backend[0],
                auth={"kind": "mtls", "client_cert_pem": "x", "client_key_pem": "y"},
            )
        )
        assert err.code is ErrorCode.BAD_REQUEST


class TestVault:
    def test_seal_open_and_rotation(self) -> None:
        old = Vault("first-secret")
        sealed = old.seal("row1", "api-key-123")
        assert "api-key-123" not in sealed
        assert old.open("row1", sealed) == "api-key-123"
        with pytest.raises(Exception, match="another row"):
            old.open("row2", sealed)
        new = Vault("second-secret", previous=["first-secret"])
        assert new.needs_reseal(sealed) and new.open("row1", sealed) == "api-key-123"
        with pytest.raises(Exception, match="does not know"):
            Vault("second-secret").open("row1", sealed)

    async def test_connector_reseals_under_a_new_key(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None, connector: Any
    ) -> None:
        url, state = backend
        await register(mesh, url, auth={"kind": "api_key", "api_key": state.api_key})
        cx = connector.connector
        cx.vault = Vault("rotated-secret", previous=[connector.settings.secret_key])
        assert await cx.reseal() == 1
        async with connector.db.sessions() as s:
            row = (await s.scalars(select(VaultSecret))).one()
        assert row.ciphertext.startswith(cx.vault.current_id + ":")
        await declare(mesh, "keyed", "/keyed")
        assert (await invoke(mesh, "fabrikam.keyed", who="fatima")).status == 200


class TestCatalogueAndGrants:
    @pytest.fixture
    async def ops(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        """fabrikam has a private and an ecosystem-visible operation."""
        await register(mesh, backend[0])
        await declare(mesh, "private-op", "/items/{item_id}")
        await declare(mesh, "public-op", "/items/{item_id}", visibility="ecosystem")

    async def test_catalogue_per_visibility(self, mesh: Mesh, ops: None) -> None:
        mesh_items = {
            w: (await mesh(c.CATALOGUE, w, {})).items for w in ("fatima", "carlos", "olivia")
        }

        def ids(who: str) -> set[str]:
            return {o.id for o in mesh_items[who]}

        assert ids("fatima") == {"fabrikam.private-op", "fabrikam.public-op"}
        assert ids("carlos") == {"fabrikam.public-op"}
        assert ids("olivia") == ids("fatima")
        assert {o.backend for o in mesh_items["fatima"]} == {"erp"}
        assert {o.backend for o in mesh_items["carlos"]} == {None}  # internal to the owner
        err = await refused(mesh(c.GET_OPERATION, "carlos", {"operation": "fabrikam.private-op"}))
        assert err.code is ErrorCode.NOT_FOUND
        await mesh(
            c.CREATE_GRANT, "fatima", {"operation": "fabrikam.private-op", "grantee": "contoso"}
        )
        items = (await mesh(c.CATALOGUE, "carlos", {})).items
        assert {o.id: o.granted for o in items} == {
            "fabrikam.private-op": True,
            "fabrikam.public-op": False,
        }
        assert (await mesh(c.CATALOGUE, "nadia", {})).items[0].id == "fabrikam.public-op"

    async def test_grant_revoke_is_immediate(self, mesh: Mesh, ops: None) -> None:
        grant = await mesh(
            c.CREATE_GRANT, "fatima", {"operation": "fabrikam.private-op", "grantee": "contoso"}
        )
        data = {"item_id": "a1"}
        assert (await invoke(mesh, "fabrikam.private-op", input=data)).status == 200
        await mesh(
            c.REVOKE_GRANT, "fatima", {"operation": "fabrikam.private-op", "grant": grant.id}
        )
        err = await refused(invoke(mesh, "fabrikam.private-op", input=data))
        assert err.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
        err = await refused(invoke(mesh, "fabrikam.public-op", input=data))
        assert err.code is ErrorCode.FORBIDDEN and "no grant" in err.detail

    async def test_ecosystem_grant_rate_limit_and_field_filter(self, mesh: Mesh, ops: None) -> None:
        await mesh(
            c.CREATE_GRANT,
            "fatima",
            {
                "operation": "fabrikam.public-op",
                "grantee": None,
                "rate_limit_per_minute": 2,
                "response_fields": ["id", "supplier.name"],
            },
        )
        data = {"item_id": "a1"}
        reply = await invoke(mesh, "fabrikam.public-op", input=data)
        assert reply.output == {"id": "a1", "supplier": {"name": "acme"}}
        await invoke(mesh, "fabrikam.public-op", who="nadia", input=data)
        await invoke(mesh, "fabrikam.public-op", input=data)
        err = await refused(invoke(mesh, "fabrikam.public-op", input=data))
        assert err.code is ErrorCode.RATE_LIMITED
        owner = await invoke(mesh, "fabrikam.public-op", who="fatima", input=data)
        assert owner.output["margin"] == 3  # the owner is not filtered

    async def test_grant_management_denials(self, mesh: Mesh, ops: None) -> None:
        body = {"operation": "fabrikam.private-op", "grantee": "contoso"}
        assert (await refused(mesh(c.CREATE_GRANT, "carlos", body))).code is ErrorCode.NOT_FOUND
        err = await refused(
            mesh(c.CREATE_GRANT, "carlos", {**body, "operation": "fabrikam.public-op"})
        )
        assert err.code is ErrorCode.FORBIDDEN
        err = await refused(mesh(c.CREATE_GRANT, "felix", body))  # a member, not an admin
        assert err.code is ErrorCode.FORBIDDEN
        assert (await mesh(c.CREATE_GRANT, "olivia", body)).grantee == "contoso"  # operator


class TestDenials:
    async def test_registration_denials(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        url = backend[0]
        cases = [
            ("carlos", {}),  # admin of another partner
            ("felix", {}),  # member, not partner_admin
            ("fatima", {"eco": "globex"}),  # token of another ecosystem
            ("fatima", {"scope": "connector:read"}),  # missing connector:admin
        ]
        for who, claims in cases:
            err = await refused(
                mesh(
                    c.REGISTER_BACKEND,
                    who,
                    {"partner": "fabrikam", "name": "erp", "base_url": url},
                    **claims,
                )
            )
            assert err.code is ErrorCode.FORBIDDEN, (who, claims)
        err = await refused(mesh(c.LIST_BACKENDS, "carlos", {"partner": "fabrikam"}))
        assert err.code is ErrorCode.FORBIDDEN
        assert (await register(mesh, url, who="olivia")).name == "erp"  # operators may
        assert (await refused(register(mesh, url))).code is ErrorCode.CONFLICT

    async def test_invoke_denials(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        await register(mesh, backend[0])
        await declare(mesh, "item", "/items/{item_id}", visibility="ecosystem")
        data = {"item_id": "a1"}
        assert (await refused(invoke(mesh, "fabrikam.item", input=data))).code is (
            ErrorCode.FORBIDDEN
        )
        err = await refused(
            invoke(mesh, "fabrikam.item", input=data, claims={"scope": "connector:read"})
        )
        assert err.code is ErrorCode.FORBIDDEN and "connector:invoke" in err.detail
        err = await refused(invoke(mesh, "fabrikam.item", input=data, claims={"eco": "globex"}))
        assert err.code is ErrorCode.FORBIDDEN
        err = await refused(invoke(mesh, "fabrikam.nope", input=data))
        assert err.code is ErrorCode.NOT_FOUND
        # Another ecosystem's own view holds nothing of acme's.
        globex = {"eco": "globex"}
        body = {"eco": "globex", "operation": "fabrikam.item", "input": data}
        err = await refused(call(mesh.nc, c.INVOKE, body, mesh.token("fatima", **globex)))
        assert err.code is ErrorCode.NOT_FOUND
        catalogue = await call(mesh.nc, c.CATALOGUE, globex, mesh.token("olivia", **globex))
        assert catalogue.items == []
        for token in (None, mesh.tokens.mint(expires_in=-120, partner="contoso")):
            err = await refused(call(mesh.nc, c.INVOKE, {**body, "eco": "acme"}, token))
            assert err.code is ErrorCode.UNAUTHENTICATED
        audit = (await mesh(c.AUDIT, "fatima", {})).items
        assert [(a.caller_partner, a.outcome) for a in audit] == [("contoso", "denied")]
