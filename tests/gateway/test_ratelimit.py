"""Rate limits per partner, per client and per IP: token buckets, local and shared via Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable

import httpx
import pytest

from gateway.ratelimit import LocalBuckets, RedisBuckets
from gateway.settings import RateLimitSpec
from mesh.localnats import free_port
from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer
from tests.support.tokens import TokenFactory

ECHO = "/v1/ecosystems/acme/echo"
LOOSE = {"rate": 1000, "burst": 1000}


def tight(burst: int) -> dict[str, float]:
    return {"rate": 0.01, "burst": burst}


async def statuses(
    client: httpx.AsyncClient, tokens_or_none: Iterable[str | None], path: str = ECHO
) -> list[int]:
    out = []
    for token in tokens_or_none:
        r = await client.get(path, headers=bearer(token) if token else {})
        out.append(r.status_code)
    return out


class TestPerClientAndPartner:
    async def test_client_bucket_runs_out_with_429_and_headers(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
    ) -> None:
        async with start_gateway(client_rate_limit=tight(3), partner_rate_limit=LOOSE) as gw:
            token = tokens.mint(client_id="northwind-backend", partner="northwind")
            ok = [await gw.get(ECHO, headers=bearer(token)) for _ in range(3)]
            refused = await gw.get(ECHO, headers=bearer(token))
        assert [r.status_code for r in ok] == [200, 200, 200]
        assert ok[0].headers["RateLimit"] == '"client";r=2;t=100'
        assert '"client";q=3;w=300' in ok[0].headers["RateLimit-Policy"]
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["RateLimit"].startswith('"client";r=0;')

    async def test_clients_of_one_partner_share_the_partner_bucket(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
    ) -> None:
        async with start_gateway(client_rate_limit=LOOSE, partner_rate_limit=tight(3)) as gw:
            a = tokens.mint(client_id="app-a", partner="northwind")
            b = tokens.mint(client_id="app-b", partner="northwind")
            other = tokens.mint(client_id="app-c", partner="contoso")
            assert await statuses(gw, [a, b, a, b]) == [200, 200, 200, 429]
            assert await statuses(gw, [other]) == [200]

    async def test_each_client_has_its_own_bucket(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
    ) -> None:
        async with start_gateway(client_rate_limit=tight(2), partner_rate_limit=LOOSE) as gw:
            a = tokens.mint(client_id="app-a", partner="northwind")
            b = tokens.mint(client_id="app-b", partner="northwind")
            assert await statuses(gw, [a, a, a]) == [200, 200, 429]
            assert await statuses(gw, [b]) == [200]

    async def test_limits_are_set_per_ecosystem(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
    ) -> None:
        override = {"globex": {"client": tight(1)}}
        async with start_gateway(client_rate_limit=LOOSE, eco_rate_limits=override) as gw:
            acme = tokens.mint(eco="acme")
            globex = tokens.mint(eco="globex")
            assert await statuses(gw, [acme, acme, acme]) == [200, 200, 200]
            globex_path = "/v1/ecosystems/globex/echo"
            assert await statuses(gw, [globex, globex], globex_path) == [200, 429]

    async def test_anonymous_callers_are_limited_per_address(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
    ) -> None:
        async with start_gateway(anonymous_rate_limit=tight(2)) as gw:
            assert await statuses(gw, [None, None, None]) == [401, 401, 429]

    async def test_a_mashup_costs_one_token_per_sub_request(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
    ) -> None:
        async with start_gateway(client_rate_limit=tight(3), partner_rate_limit=LOOSE) as gw:
            batch = {"requests": [{"id": str(i), "path": ECHO} for i in range(4)]}
            r = await gw.post(
                "/v1/ecosystems/acme/mashup", json=batch, headers=bearer(tokens.mint())
            )
        assert r.status_code == 429

    async def test_disabled_limits_never_refuse(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        tokens: TokenFactory,
    ) -> None:
        async with start_gateway(rate_limits_enabled=False, anonymous_rate_limit=tight(1)) as gw:
            r = [await gw.get(ECHO) for _ in range(3)]
        assert [x.status_code for x in r] == [401, 401, 401]
        assert "RateLimit" not in r[0].headers


class TestBuckets:
    async def test_local_bucket_refills_at_its_rate(self) -> None:
        buckets, spec = LocalBuckets(), RateLimitSpec(rate=20, burst=1)
        assert (await buckets.take("k", spec, 1))[0]
        assert not (await buckets.take("k", spec, 1))[0]
        await asyncio.sleep(0.1)
        assert (await buckets.take("k", spec, 1))[0]

    async def test_redis_bucket_refills_at_its_rate(self, redis_url: str) -> None:
        import redis.asyncio as redis

        client = redis.from_url(redis_url)
        buckets = RedisBuckets(client, f"pm:test:{uuid.uuid4().hex}:")
        # 2 per second: a token takes 500 ms to come back, far longer than three round
        # trips to Redis on a busy machine (at 20 per second, 50 ms was not always).
        spec = RateLimitSpec(rate=2, burst=2)
        try:
            assert [(await buckets.take("k", spec, 1))[0] for _ in range(3)] == [True, True, False]
            await asyncio.sleep(0.6)
            assert (await buckets.take("k", spec, 1))[0]
            assert not (await buckets.take("k", spec, 5))[0]  # more than the burst: never
        finally:
            await client.aclose()


class TestSharedThroughRedis:
    async def test_two_gateways_draw_from_one_bucket(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
        redis_url: str,
    ) -> None:
        shared = {
            "redis_url": redis_url,
            "rate_limit_key_prefix": f"pm:test:{uuid.uuid4().hex}:",
            "client_rate_limit": tight(4),
            "partner_rate_limit": LOOSE,
        }
        token = tokens.mint()
        async with start_gateway(**shared) as one, start_gateway(**shared) as two:
            assert await statuses(one, [token, token]) == [200, 200]
            assert await statuses(two, [token, token]) == [200, 200]
            assert await statuses(one, [token]) == [429]
            assert await statuses(two, [token]) == [429]

    async def test_gateways_without_redis_do_not_share(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
    ) -> None:
        limits = {"client_rate_limit": tight(2), "partner_rate_limit": LOOSE}
        token = tokens.mint()
        async with start_gateway(**limits) as one, start_gateway(**limits) as two:
            assert await statuses(one, [token, token, token]) == [200, 200, 429]
            assert await statuses(two, [token, token]) == [200, 200]

    @pytest.mark.parametrize("limit", [2])
    async def test_unreachable_redis_falls_back_to_local_buckets(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        profile: ServiceRuntime,
        tokens: TokenFactory,
        limit: int,
    ) -> None:
        dead = f"redis://127.0.0.1:{free_port()}/0"
        async with start_gateway(
            redis_url=dead, client_rate_limit=tight(limit), partner_rate_limit=LOOSE
        ) as gw:
            token = tokens.mint()
            assert await statuses(gw, [token] * (limit + 1)) == [200] * limit + [429]
