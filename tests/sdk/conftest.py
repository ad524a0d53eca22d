"""SDKs generated from the live ``/openapi.json`` of a running gateway.

The mesh is the fuzzer's (``tests.fuzz.conftest.MeshThread``: identity, the gateway, every
service and the portal on a NATS of their own, seeded), its event loop in a thread, so the
generated clients call it with blocking HTTP from the test's thread. The generators run
once per package: ``openapi-python-client`` from the dev dependencies, ``openapi-typescript``
from npm, installed on first use into a cache directory of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fuzz.conftest import MeshThread
from tests.portal.mesh import Mesh

# openapi-typescript and the TypeScript compiler that checks its output, pinned.
NPM_PACKAGES = ("openapi-typescript@7.13.0", "typescript@5.9.3")
NPM_CACHE = Path(tempfile.gettempdir()) / "partnermesh-sdk-cache" / "npm-openapi-typescript-7.13.0"


@dataclass
class Generated:
    """What a generator wrote and said."""

    path: Path
    output: str


@pytest.fixture(scope="package")
def sdk_mesh(
    tmp_path_factory: pytest.TempPathFactory, demo_hashes: dict[str, str]
) -> Iterator[Mesh]:
    """The seeded mesh, serving on free loopback ports, for every test of this package."""
    runner = MeshThread(tmp_path_factory.mktemp("sdk-mesh"), demo_hashes)
    mesh = runner.start()
    try:
        yield mesh
    finally:
        runner.stop()


@pytest.fixture(scope="package")
def live_openapi(sdk_mesh: Mesh, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document the running gateway serves, as a client's developer would fetch it."""
    resp = httpx.get(f"{sdk_mesh.gateway_url}/openapi.json", timeout=30)
    assert resp.status_code == 200, resp.text
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(resp.json()))
    return path


def _tools_path() -> str:
    """PATH with this interpreter's scripts first (the generator formats with ruff)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@pytest.fixture(scope="package")
def python_client(live_openapi: Path, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """``openapi-python-client generate`` into a package named ``pmclient``."""
    out = tmp_path_factory.mktemp("python-sdk") / "pmclient"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            *(["--path", str(live_openapi), "--output-path", str(out), "--meta", "none"]),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": _tools_path()},
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return Generated(out, output)


def npm_tools() -> Path:
    """``node_modules/.bin`` with openapi-typescript and tsc, installed once into the cache.

    Fails (never skips) when npm is missing or the install fails: CI installs node and npm.
    """
    bin_dir = NPM_CACHE / "node_modules" / ".bin"
    if (bin_dir / "openapi-typescript").exists() and (bin_dir / "tsc").exists():
        return bin_dir
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: the TypeScript SDK check needs node and npm")
    NPM_CACHE.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=NPM_CACHE.parent, prefix="installing-"))
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(staging),
            *(NPM_PACKAGES),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(f"npm install {' '.join(NPM_PACKAGES)} failed:\n{done.stdout}{done.stderr}")
    try:
        staging.rename(NPM_CACHE)  # whole or not at all
    except OSError:  # another run finished first
        shutil.rmtree(staging, ignore_errors=True)
    return bin_dir


@pytest.fixture(scope="package")
def typescript_types(live_openapi: Path, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """``openapi-typescript`` into ``api.ts``."""
    out = tmp_path_factory.mktemp("ts-sdk") / "api.ts"
    done = subprocess.run(
        [str(npm_tools() / "openapi-typescript"), str(live_openapi), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return Generated(out, output)
