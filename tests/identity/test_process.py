"""The process around the provider: settings, NATS at start, seed-demo idempotency."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from identity.cli import commands
from identity.http.app import create_app
from identity.settings import IdentitySettings
from mesh.localnats import child_process, nats_command, provision_streams, wait_port
from tests.support import infra


class TestSettings:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PM_IDENTITY_PORT", raising=False)
        settings = IdentitySettings()
        assert settings.port == 8081 and settings.public_url == "http://127.0.0.1:8081"
        assert settings.issuer("acme") == "http://127.0.0.1:8081/eco/acme"
        assert settings.database_url_or_default().startswith("sqlite+aiosqlite:///")

    def test_env_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PM_IDENTITY_PUBLIC_URL", "https://id.example")
        assert IdentitySettings().secure_cookies

    def test_production_refuses_default_secrets(self) -> None:
        with pytest.raises(ValidationError):
            IdentitySettings(environment="production", secret_key="real")
        with pytest.raises(ValidationError):
            IdentitySettings(environment="production", key_encryption_secret="real")
        IdentitySettings(environment="production", secret_key="a", key_encryption_secret="b")


class TestStartup:
    async def test_waits_for_nats_serving_not_ready_meanwhile(self, tmp_path: Path) -> None:
        """NATS not there at start: identity keeps trying instead of exiting, answers 503
        (probe and requests alike), and becomes ready by itself once NATS is up."""
        port = infra.free_port()
        settings = IdentitySettings(
            nats_url=f"nats://127.0.0.1:{port}",
            nats_connect_timeout_s=1,
            startup_grace_s=0.1,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        )
        app = create_app(settings)
        with contextlib.ExitStack() as later:  # NATS stops after identity
            async with infra.serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
                assert (await http.get("/readyz")).status_code == 503
                refused = await http.get("/eco/acme/.well-known/openid-configuration")
                assert refused.status_code == 503 and refused.json()["code"] == "unavailable"
                later.enter_context(
                    child_process(
                        nats_command(port, later.enter_context(tempfile.TemporaryDirectory()))
                    )
                )
                wait_port(port)
                provision_streams(settings.nats_url)
                status = 503
                for _ in range(300):
                    status = (await http.get("/readyz")).status_code
                    if status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200
                served = await http.get("/eco/acme/.well-known/openid-configuration")
                assert served.status_code != 503


class TestSeedDemo:
    async def test_idempotent_and_private(
        self, tmp_path: Path, idp_database: str, demo_hashes: dict[str, str]
    ) -> None:
        settings = IdentitySettings(database_url=idp_database)
        out = tmp_path / "creds.json"
        first = await commands.seed_demo(settings, out, demo_hashes)
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        assert len(first["clients"]["northwind-backend"]["client_secret"]) >= 43  # 256 bits
        assert first["clients"]["mesh-cli"]["client_secret"] is None
        second = await commands.seed_demo(settings, out, demo_hashes)
        assert second == first == json.loads(out.read_text())
        out.unlink()  # file lost: secrets are re-issued, never recovered
        third = await commands.seed_demo(settings, out, demo_hashes)
        assert (
            third["clients"]["portal"]["client_secret"]
            != first["clients"]["portal"]["client_secret"]
        )

    async def test_the_allied_demo_ecosystem(
        self, tmp_path: Path, idp_database: str, demo_hashes: dict[str, str]
    ) -> None:
        settings = IdentitySettings(database_url=idp_database)
        out = tmp_path / "creds.json"
        first = await commands.seed_demo(settings, out, demo_hashes)
        ally = first["allies"]["meridian"]
        assert ally["issuer"] == settings.issuer("meridian")
        assert {u: p["partner"] for u, p in ally["people"].items()} == {
            "mira": "meridian-hq",
            "bastian": "meridian-hq",
            "wanda": "wideworld",
            "walter": "wideworld",
            "tara": "tailspin",
            "theo": "tailspin",
        }
        secret = ally["clients"]["wideworld-backend"]["client_secret"]
        assert len(secret) >= 43 and ally["clients"]["mesh-cli"]["client_secret"] is None
        assert not set(ally["people"]) & set(first["people"])  # one login name, one person
        # a file written before the ally was seeded: its clients get secrets, acme's stay
        doc = json.loads(out.read_text())
        del doc["allies"]
        out.write_text(json.dumps(doc))
        again = await commands.seed_demo(settings, out, demo_hashes)
        assert again["clients"] == first["clients"]
        renewed = again["allies"]["meridian"]["clients"]["wideworld-backend"]["client_secret"]
        assert renewed and renewed != secret


@pytest.mark.slow  # real processes
class TestCommandLine:
    async def test_seed_serve_and_rotate_as_real_processes(
        self, tmp_path: Path, nats_url: str
    ) -> None:
        """``python -m identity seed-demo``, ``python -m identity`` and ``rotate-keys``."""
        import asyncio
        import subprocess
        import sys

        import httpx

        port = infra.free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PM_IDENTITY_PORT": str(port),
            "PM_IDENTITY_PUBLIC_URL": url,
            "PM_IDENTITY_NATS_URL": nats_url,
            "PM_VAR_DIR": str(tmp_path / "var"),
        }
        out = tmp_path / "var" / "demo-identity.json"
        seeded = subprocess.run(
            [sys.executable, "-m", "identity", "seed-demo", "--out", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr
        assert (tmp_path / "var" / "identity.db").exists()  # the default SQLite under var/
        creds = json.loads(out.read_text())
        proc = subprocess.Popen(
            [sys.executable, "-m", "identity"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                ready = False
                for _ in range(600):  # up to ~60 s on a loaded machine
                    try:
                        ready = (await http.get(f"{url}/readyz")).status_code == 200
                    except httpx.HTTPError:
                        pass
                    if ready or proc.poll() is not None:
                        break
                    await asyncio.sleep(0.1)
                assert ready, f"python -m identity did not become ready (exit {proc.poll()})"
                backend = creds["clients"]["northwind-backend"]
                for _ in range(3):  # the full path, then the lean path from its caches
                    resp = await http.post(
                        f"{url}/eco/acme/token",
                        data={"grant_type": "client_credentials"},
                        auth=(backend["client_id"], backend["client_secret"]),
                    )
                    assert resp.status_code == 200
            rotated = subprocess.run(
                [sys.executable, "-m", "identity", "rotate-keys", "--eco", "acme"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert rotated.returncode == 0 and json.loads(rotated.stdout)["active"]
            missing = subprocess.run(
                [sys.executable, "-m", "identity", "rotate-keys", "--eco", "nowhere"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert missing.returncode != 0 and "nowhere" in missing.stderr
        finally:
            proc.terminate()
            assert proc.wait(15) is not None
