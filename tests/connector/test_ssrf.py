"""The egress guard: SSRF tricks are refused; loopback only when the operator allow-lists it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.errors import MeshError
from services.connector import ssrf
from tests.connector.backends import BackendState
from tests.connector.conftest import Mesh, declare, register

TRICKS = [
    "http://127.0.0.1/",
    "http://2130706433/",  # decimal
    "http://0x7f.0.0.1/",  # hex octet
    "http://0x7f000001/",  # hex
    "http://127.1/",  # short form
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::7f00:1]/",  # NAT64
    "http://localhost/",  # a name that resolves to loopback
    "http://localhost./",
    "http://0/",
    "http://0.0.0.0/",
    "http://10.1.2.3/",
    "http://192.168.0.1/",
    "http://172.16.0.1/",
    "http://100.64.0.1/",  # shared address space
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://user:pw@example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1/",
]


async def refused(coro: Awaitable[object]) -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value


class TestGuard:
    @pytest.mark.parametrize("url", TRICKS)
    async def test_trick_is_refused(self, url: str) -> None:
        with pytest.raises(ssrf.EgressRefused):
            await ssrf.check_url(url, [])

    async def test_allow_list_opens_only_its_network(self) -> None:
        allowed = ssrf.parse_networks(["127.0.0.1/32"])
        await ssrf.check_url("http://127.0.0.1:9/", allowed)
        await ssrf.check_url("http://[::ffff:127.0.0.1]:9/", allowed)
        for url in ("http://127.0.0.2/", "http://10.0.0.1/", "http://169.254.169.254/"):
            with pytest.raises(ssrf.EgressRefused):
                await ssrf.check_url(url, allowed)

    async def test_a_port_entry_opens_that_port_only(self) -> None:
        allowed = ssrf.parse_networks(["127.0.0.1:9201", "[::1]:9202"])
        await ssrf.check_url("http://127.0.0.1:9201/stock", allowed)
        await ssrf.check_url("http://[::ffff:127.0.0.1]:9201/", allowed)
        await ssrf.check_url("http://[::1]:9202/", allowed)
        for url in (
            "http://127.0.0.1:9202/",  # another port of the same address
            "http://127.0.0.1/",  # the default port
            "http://127.0.0.1:8223/connz",  # e.g. NATS monitoring beside a demo back-end
            "http://[::1]:9201/",
            "http://127.0.0.2:9201/",
        ):
            with pytest.raises(ssrf.EgressRefused, match="not a public address"):
                await ssrf.check_url(url, allowed)

    def test_entries_are_parsed_strictly_and_printed_canonically(self) -> None:
        printed = [
            str(n)
            for n in ssrf.parse_networks(
                ["127.0.0.1:9201", "[::1]:80", "10.0.0.0/8:443", "10.0.0.0/8", "::1", "127.0.0.1"]
            )
        ]
        assert printed == [
            "127.0.0.1:9201",
            "[::1]:80",
            "10.0.0.0/8:443",
            "10.0.0.0/8",
            "::1/128",
            "127.0.0.1/32",
        ]
        for bad in ("127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:x", "[::1", "[::1]x", "host:80"):
            with pytest.raises(ValueError):
                ssrf.parse_network(bad)

    async def test_metadata_stays_refused_even_inside_an_allowed_network(self) -> None:
        with pytest.raises(ssrf.EgressRefused, match="metadata"):
            await ssrf.check_url("http://169.254.169.254/", ssrf.parse_networks(["0.0.0.0/0"]))


# Addresses Python's ipaddress calls global although they embed or name a private target.
EMBEDDINGS = [
    "http://[::127.0.0.1]/",  # IPv4-compatible IPv6 (deprecated)
    "http://[::7f00:1]/",
    "http://[::8.8.8.8]/",  # refused whatever it embeds: no route means "that IPv4 host"
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated (SIIT)
    "http://[::ffff:0:a00:1]/",
    "http://[64:ff9b::a00:1]/",  # well-known NAT64 of 10.0.0.1 (unwrapped, then judged)
    "http://[64:ff9b::a9fe:a9fe]/",  # ... of the metadata address
    "http://[64:ff9b:1::7f00:1]/",  # local-use NAT64 (RFC 8215): embedding not knowable
    "http://[64:ff9b:1::808:808]/",
    "http://[fec0::1]/",  # site-local (deprecated)
    "http://[fec0:0:0:1::1]/",
    "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "http://[2002:c0a8:1::1]/",  # 6to4 of 192.168.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[3ffe::1]/",  # the returned 6bone range
    "http://[5f00::1]/",  # outside global unicast (SRv6 SIDs)
    "http://[100::1]/",  # discard-only
    "http://[fc00::1]/",  # unique local
    "http://[ff02::1]/",  # multicast
]
PUBLIC = [
    "http://8.8.8.8/",
    "http://[2606:4700:4700::1111]/",  # a global unicast IPv6 address
    "http://[64:ff9b::808:808]/",  # NAT64 of a public IPv4 address (DNS64 networks)
    "http://[::ffff:8.8.8.8]/",  # IPv4-mapped public address
    "http://[2002:808:808::1]/",  # 6to4 of a public address
]


class TestEmbeddings:
    @pytest.mark.parametrize("url", EMBEDDINGS)
    async def test_embedding_is_refused(self, url: str) -> None:
        with pytest.raises(ssrf.EgressRefused):
            await ssrf.check_url(url, [])

    @pytest.mark.parametrize("url", PUBLIC)
    async def test_public_addresses_pass(self, url: str) -> None:
        await ssrf.check_url(url, [])

    async def test_the_operator_may_allow_a_site_local_network(self) -> None:
        allowed = ssrf.parse_networks(["fec0::/10"])
        await ssrf.check_url("http://[fec0::1]/", allowed)
        with pytest.raises(ssrf.EgressRefused):
            await ssrf.check_url("http://[::127.0.0.1]/", allowed)


class TestThroughTheConnector:
    async def test_registration_refuses_tricks(self, mesh: Mesh, connector: Any) -> None:
        resolvable = [u for u in TRICKS if "localhost." not in u]  # no resolver answers it here
        for i, url in enumerate(resolvable):
            err = await refused(register(mesh, url, name=f"b{i}"))
            assert err.code in (ErrorCode.BAD_REQUEST, ErrorCode.VALIDATION_FAILED), url

    async def test_unresolvable_name_registers_but_every_call_is_checked(
        self, mesh: Mesh, connector: Any
    ) -> None:
        await register(mesh, "http://erp.fabrikam.invalid")
        await declare(mesh, "item", "/items/{item_id}")
        err = await refused(
            mesh(c.INVOKE, "fatima", {"operation": "fabrikam.item", "input": {"item_id": "a"}})
        )
        assert err.code is ErrorCode.BAD_GATEWAY and "cannot resolve" in err.detail

    async def test_loopback_needs_the_operator(
        self, mesh: Mesh, backend: tuple[str, BackendState], connector: Any
    ) -> None:
        url = backend[0]
        assert (await refused(register(mesh, url))).code is ErrorCode.BAD_REQUEST
        err = await refused(mesh(c.SET_ALLOWLIST, "fatima", {"entries": ["127.0.0.1/32"]}))
        assert err.code is ErrorCode.FORBIDDEN  # partner admins cannot open the guard
        err = await refused(mesh(c.SET_ALLOWLIST, "olivia", {"entries": ["169.254.0.0/16"]}))
        assert err.code is ErrorCode.BAD_REQUEST
        await mesh(c.SET_ALLOWLIST, "olivia", {"entries": ["127.0.0.1/32"]})
        assert (await register(mesh, url)).base_url == url
        assert (await mesh(c.GET_ALLOWLIST, "olivia", {})).entries == ["127.0.0.1/32"]

    async def test_a_port_allowance_reaches_that_back_end_and_nothing_beside_it(
        self, mesh: Mesh, backend: tuple[str, BackendState], connector: Any
    ) -> None:
        url = backend[0]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        await mesh(c.SET_ALLOWLIST, "olivia", {"entries": [f"127.0.0.1:{port}"]})
        assert (await mesh(c.GET_ALLOWLIST, "olivia", {})).entries == [f"127.0.0.1:{port}"]
        await register(mesh, url)
        await declare(mesh, "item", "/items/{item_id}")
        call = {"operation": "fabrikam.item", "input": {"item_id": "a"}}
        assert (await mesh(c.INVOKE, "fatima", call)).status == 200
        other = f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}"
        err = await refused(register(mesh, other, name="beside"))
        assert err.code is ErrorCode.BAD_REQUEST and "not a public address" in err.detail

    async def test_removing_the_allowance_stops_calls(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        await register(mesh, backend[0])
        await declare(mesh, "item", "/items/{item_id}")
        call = {"operation": "fabrikam.item", "input": {"item_id": "a"}}
        assert (await mesh(c.INVOKE, "fatima", call)).status == 200
        await mesh(c.SET_ALLOWLIST, "olivia", {"entries": []})
        err = await refused(mesh(c.INVOKE, "fatima", call))
        assert err.code is ErrorCode.BAD_GATEWAY and "egress refused" in err.detail

    async def test_redirects(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        url, state = backend
        await register(mesh, url)
        for name in ("same", "other", "metadata"):
            await declare(mesh, f"redirect-{name}", f"/redirect/{name}")
        same = await mesh(c.INVOKE, "fatima", {"operation": "fabrikam.redirect-same"})
        assert same.output["id"] == "r1"
        for name in ("other", "metadata"):
            err = await refused(
                mesh(c.INVOKE, "fatima", {"operation": f"fabrikam.redirect-{name}"})
            )
            assert err.code is ErrorCode.BAD_GATEWAY and "another host" in err.detail
        assert state.hits["/items/r1"] == 1  # only the same-host redirect was followed

    async def test_oauth_token_url_is_guarded(
        self, mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
    ) -> None:
        err = await refused(
            register(
                mesh,
                backend[0],
                auth={
                    "kind": "oauth2_client_credentials",
                    "token_url": "http://169.254.169.254/token",
                    "client_id": "a",
                    "client_secret": "b",
                },
            )
        )
        assert err.code is ErrorCode.BAD_REQUEST and "metadata" in err.detail
