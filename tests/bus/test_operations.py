"""Operating the secured bus: key rotation without downtime (server reload), and every
permission violation logged by the server and counted for alerting."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from prometheus_client import REGISTRY

from contracts.bus import inbox_prefix
from mesh.nats import BusAuth, connect
from tests.bus.conftest import Probe, SecuredBus, probe, secured_server


async def refused_soon(url: str, auth: BusAuth) -> bool:
    """Whether connecting with ``auth`` is refused, waiting for a reload to take effect."""
    async with asyncio.timeout(10):
        while True:
            try:
                p = await probe(url, auth, "retired")
            except NatsError as exc:
                if "authorization violation" in str(exc).lower():
                    return True
            except OSError:
                pass  # a connection cut short while the server reloads: try again
            else:
                await p.nc.close()
            await asyncio.sleep(0.05)


async def admitted_soon(url: str, auth: BusAuth) -> Probe:
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(NatsError, OSError):
                return await probe(url, auth, "rotated")
            await asyncio.sleep(0.05)


class TestRotation:
    async def test_old_and_new_key_overlap_then_old_is_retired(self, tmp_path: Path) -> None:
        with secured_server(tmp_path) as server:
            old_seed = tmp_path / "old.nk"
            old_seed.write_bytes(server.keyring.seed_file("profile").read_bytes())
            old = await probe(server.url, server.auth("profile", old_seed), "profile-old")

            new_key = server.keyring.rotate("profile")
            server.rerender()
            new = await admitted_soon(server.url, server.auth("profile"))
            assert new_key != server.keyring.public_keys("profile")[1]

            # During the window both are admitted, with the same grants, and the
            # replica still on the old key keeps working through the reload.
            again = await probe(server.url, server.auth("profile", old_seed), "profile-old2")
            await again.nc.close()
            got: list[bytes] = []

            async def on_msg(msg: Msg) -> None:
                got.append(msg.data)

            await old.nc.subscribe(f"{inbox_prefix('profile')}.x", cb=on_msg)
            await old.nc.flush()
            assert old.nc.is_connected
            assert await old.settle() == set()

            server.keyring.retire("profile")
            server.rerender()
            assert await refused_soon(server.url, server.auth("profile", old_seed))
            async with asyncio.timeout(10):  # the server logs it just after refusing
                while "authentication error" not in server.log():
                    await asyncio.sleep(0.02)
            assert new.nc.is_connected
            assert await new.settle() == set()
            await new.nc.close()
            with contextlib.suppress(Exception):
                await old.nc.close()

    async def test_a_running_process_keeps_its_key_until_it_restarts(self, tmp_path: Path) -> None:
        """A rotation replaces the seed file under a running process: when it reconnects
        (here: the server restarts) it still signs with the key it started with, which
        the window admits; only a restart moves it to the new key."""
        with secured_server(tmp_path) as server:
            nc = await connect(server.url, "profile-5", server.auth("profile"))
            try:
                old_key = server.keyring.public_keys("profile")[0]
                server.keyring.rotate("profile")
                server.rerender()
                server.restart()
                async with asyncio.timeout(15):
                    while not (nc.stats["reconnects"] >= 1 and nc.is_connected):
                        await asyncio.sleep(0.05)
                await nc.publish("pm.v1.evt.acme.profile.person_updated", b"{}")
                await nc.flush()
                assert violations("profile-5") == 0
                assert f'Nkey "{old_key}"' not in server.log()  # no authentication error
                restarted = await admitted_soon(server.url, server.auth("profile"))
                await restarted.nc.close()
            finally:
                await nc.close()

    def test_rotating_twice_without_retiring_is_refused(self, tmp_path: Path) -> None:
        from deploy.natskeys import Keyring

        keyring = Keyring(tmp_path).ensure(["gateway"])
        keyring.rotate("gateway")
        with pytest.raises(ValueError, match="retire"):
            keyring.rotate("gateway")
        assert len(keyring.public_keys("gateway")) == 2
        keyring.retire("gateway")
        assert len(keyring.public_keys("gateway")) == 1

    def test_seed_files_are_private(self, tmp_path: Path) -> None:
        from deploy.natskeys import Keyring

        Keyring(tmp_path / "creds").ensure()
        for seed in (tmp_path / "creds").iterdir():
            assert seed.stat().st_mode & 0o777 == 0o600


def violations(conn: str) -> float:
    value = REGISTRY.get_sample_value("pm_nats_permission_violations_total", {"conn": conn})
    return value or 0.0


class TestViolations:
    async def test_logged_by_the_server_and_counted_by_the_process(
        self, secured: SecuredBus
    ) -> None:
        nc = await connect(secured.url, "gateway-77", secured.auth("gateway"))
        try:
            assert violations("gateway-77") == 0
            await nc.publish("pm.v1.evt.acme.identity.token_revoked", b"forged")
            await nc.subscribe("pm.v1.>")
            await nc.flush()
            async with asyncio.timeout(10):
                while violations("gateway-77") < 2:
                    await asyncio.sleep(0.02)
            assert violations("gateway-77") == 2
        finally:
            await nc.close()
        log = secured.log()
        assert 'gateway-77" - "$G/nkey:' in log
        assert 'Publish Violation - Subject "pm.v1.evt.acme.identity.token_revoked"' in log
        assert 'Subscription Violation - Subject "pm.v1.>"' in log


class TestStreamsAtDeployTime:
    async def test_a_process_waits_until_the_admin_created_the_stream(self, tmp_path: Path) -> None:
        """Running processes may not create streams: one that starts first is refused
        (logged, counted) and waits until the deploy-time admin has created it."""
        from contracts.bus import ADMIN
        from contracts.subjects import EVENT_STREAM
        from deploy import bus
        from mesh.nats import ensure_event_stream

        with secured_server(tmp_path) as server:
            nc = await connect(server.url, "profile-9", server.auth("profile"))
            try:
                waiting = asyncio.create_task(ensure_event_stream(nc.jetstream()))
                async with asyncio.timeout(10):
                    while violations("profile-9") < 1:
                        await asyncio.sleep(0.02)
                assert not waiting.done()
                await bus.create_streams(server.url, server.auth(ADMIN))
                async with asyncio.timeout(10):
                    await waiting
                info = await nc.jetstream().stream_info(EVENT_STREAM)
                assert info.config.name == EVENT_STREAM
                assert violations("profile-9") == 1
                assert f"$JS.API.STREAM.CREATE.{EVENT_STREAM}" in server.log()
            finally:
                await nc.close()


class TestProductionSettings:
    def test_production_refuses_an_anonymous_bus_connection(self) -> None:
        from services.profile.settings import ProfileSettings

        settings = ProfileSettings(environment="production", secret_key="x" * 40)
        with pytest.raises(ValueError, match="PM_PROFILE_NATS_NKEY_SEED_FILE"):
            BusAuth.from_settings(settings)

    def test_production_with_a_key_and_development_without(self, tmp_path: Path) -> None:
        from services.profile.settings import ProfileSettings

        seed = tmp_path / "profile.nk"
        settings = ProfileSettings(
            environment="production",
            secret_key="x" * 40,
            nats_nkey_seed_file=str(seed),
            nats_inbox_prefix="_INBOX.profile",
        )
        assert BusAuth.from_settings(settings).inbox_prefix == "_INBOX.profile"
        assert BusAuth.from_settings(ProfileSettings()).options() == {}
