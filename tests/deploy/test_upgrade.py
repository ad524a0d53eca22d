"""An upgrade as a user makes it: the previous release's wheel runs `partnermesh up` in an
empty folder and is seeded; data is written through the API; this release's wheel is
installed over it, migrates and serves the same data.

Both wheels are built once and cached (the previous one by its commit, this one by the
content of what it packages) under the system's temp directory. They are installed with
``--no-deps`` into a fresh virtualenv that borrows the test environment's dependencies
(a path entry, not its ``.pth`` hooks, so the checkout's editable install stays out):
the check is the upgrade of partnermesh itself, and each wheel's requirements are checked
to be met by what it runs on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy import release
from mesh.localnats import nats_server_binary
from tests.deploy.test_launcher import offset_with_free_ports

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(tempfile.gettempdir()) / "partnermesh-release-cache"
PACKAGED = ("pyproject.toml", "README.md", "LICENSE")
PIP = (sys.executable, "-m", "pip")
NO_DEPS = ("--no-deps", "--no-index", "--force-reinstall")


def _build(source: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("partnermesh-*.whl")
    return wheel


def previous_wheel(commit: str) -> Path:
    """The wheel of the release built from ``commit`` (cached by commit)."""
    out = CACHE / f"release-{commit}"
    if found := sorted(out.glob("partnermesh-*.whl")):
        return found[0]
    with tempfile.TemporaryDirectory() as src:
        archive = subprocess.run(
            ["git", "archive", commit], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
        return _build(Path(src), out)


def current_wheel() -> Path:
    """This checkout's wheel (cached by the content of the files it packages)."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = tuple(p.rstrip("*") for p in include["packages"]["find"]["include"])
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    digest = hashlib.sha256()
    for name in sorted(listed):
        if (name in PACKAGED or name.split("/")[0] in roots) and (ROOT / name).is_file():
            digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    out = CACHE / f"tree-{digest.hexdigest()[:24]}"
    if found := sorted(out.glob("partnermesh-*.whl")):
        return found[0]
    with tempfile.TemporaryDirectory() as src:  # a copy: the build leaves nothing in the tree
        for name in listed:
            if (name in PACKAGED or name.split("/")[0] in roots) and (ROOT / name).is_file():
                (Path(src) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, Path(src) / name)
        return _build(Path(src), out)


class Env:
    """A virtualenv with partnermesh installed from a wheel, dependencies borrowed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        purelib = Path(
            subprocess.run(
                [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        (purelib / "zz-borrowed-dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
        (path / "bin" / "nats-server").symlink_to(nats_server_binary())

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def install(self, wheel: Path) -> None:
        subprocess.run(
            [*PIP, "--python", self.python, "install", "-q", *NO_DEPS, str(wheel)],
            check=True,
            capture_output=True,
        )
        # What this wheel requires is there, and it is the wheel's code that runs.
        check = (
            "import importlib.metadata as m, deploy, sys\n"
            "from packaging.requirements import Requirement\n"
            "from packaging.version import Version\n"
            "missing = []\n"
            "for r in map(Requirement, m.requires('partnermesh') or []):\n"
            "    if r.marker and not r.marker.evaluate({'extra': ''}): continue\n"
            "    try: v = m.version(r.name)\n"
            "    except m.PackageNotFoundError: missing.append(str(r)); continue\n"
            "    if not r.specifier.contains(Version(v), prereleases=True):\n"
            "        missing.append(str(r))\n"
            "print(m.version('partnermesh'), deploy.__file__, missing)\n"
        )
        out = subprocess.run(  # not from the checkout: its sources and metadata stay out
            [self.python, "-c", check], cwd=self.path, capture_output=True, text=True, check=True
        ).stdout.split()
        assert out[0] == wheel.name.split("-")[1], out
        assert out[1].startswith(str(self.path)), f"not the wheel's code: {out[1]}"
        assert out[2] == "[]", f"requirements not met: {out[2:]}"

    def up(self, workdir: Path, offset: int) -> tuple[subprocess.Popen[str], str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "PYTHON"))}
        proc = subprocess.Popen(
            [str(self.path / "bin" / "partnermesh"), "up", "--port-offset", str(offset)],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        output: list[str] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Press Ctrl-C" in line:
                return proc, "".join(output)
        stop(proc)
        raise AssertionError("partnermesh up did not come up:\n" + "".join(output[-40:]))


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.stdout is not None
    proc.stdout.close()


def token(info: dict[str, Any], client: str = "northwind-backend") -> str:
    resp = httpx.post(
        info["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "scope": "directory:read profile:read profile:write",
        },
        auth=(client, info["clients"][client]["client_secret"]),
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def observe(
    info: dict[str, Any], marker: str, served: dict[str, set[str]] | None = None
) -> dict[str, Any]:
    """What the test compares across the upgrade, read through the gateway. A release may
    add fields to a reply: with ``served`` (per kind, the fields the previous release's
    directory entries had) an entry is compared on those only, and must still have each."""
    api = f"{info['gateway']}/v1/ecosystems/{info['ecosystem']}"
    headers = {"Authorization": f"Bearer {token(info)}"}
    seen: dict[str, Any] = {}
    for kind in ("person", "company"):
        page = httpx.get(
            f"{api}/directory", params={"kind": kind, "page_size": 100}, headers=headers
        )
        assert page.status_code == 200, page.text
        entries = page.json()["entries"]
        seen[f"{kind}_fields"] = set().union(*(e.keys() for e in entries))
        keep = (served or {}).get(kind)
        seen[kind] = sorted(
            json.dumps({k: e.get(k, "missing") for k in keep} if keep else e, sort_keys=True)
            for e in entries
        )
        seen[f"{kind}s"] = page.json()["total"]
    found = httpx.get(f"{api}/directory", params={"kind": "company", "q": marker}, headers=headers)
    company = httpx.get(f"{api}/partners/northwind/profile", headers=headers)
    assert found.status_code == 200 and company.status_code == 200, (found.text, company.text)
    seen["found"] = [(e["kind"], e["id"]) for e in found.json()["entries"]]
    seen["description"] = company.json().get("description")
    return seen


def identity_revision(workdir: Path) -> str:
    with sqlite3.connect(workdir / "var" / "identity.db") as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_previous_release_upgrades_in_place(tmp_path: Path) -> None:
    started = time.monotonic()
    previous = tomllib.loads(release.RECORD.read_text())["release"][-1]
    old, new = previous_wheel(previous["commit"]), current_wheel()
    assert old.name == f"partnermesh-{previous['version']}-py3-none-any.whl"
    assert new.name == f"partnermesh-{release.project_version()}-py3-none-any.whl"
    built = time.monotonic()

    env, workdir = Env(tmp_path / "venv"), tmp_path / "deployment"
    workdir.mkdir()
    env.install(old)
    offset = offset_with_free_ports()
    proc, _ = env.up(workdir, offset)
    try:
        info = json.loads((workdir / "var" / "mesh.json").read_text())
        assert identity_revision(workdir) == previous["heads"]["identity"]
        marker = f"upgradecheck{uuid.uuid4().hex[:8]}"
        api = f"{info['gateway']}/v1/ecosystems/{info['ecosystem']}"
        wrote = httpx.patch(
            f"{api}/partners/northwind/profile",
            json={"description": f"Northwind, still here after the upgrade ({marker})"},
            headers={"Authorization": f"Bearer {token(info)}"},
        )
        assert wrote.status_code == 200, wrote.text
        before = observe(info, marker)
    finally:
        stop(proc)
    assert before["persons"] >= 5 and before["companys"] >= 3, before
    assert before["found"] == [("company", "northwind")], before
    first_run = time.monotonic()

    env.install(new)
    proc, _ = env.up(workdir, offset)
    try:
        served = {kind: before[f"{kind}_fields"] for kind in ("person", "company")}
        after = observe(json.loads((workdir / "var" / "mesh.json").read_text()), marker, served)
    finally:
        stop(proc)
    for kind in ("person", "company"):
        assert after.pop(f"{kind}_fields") >= before.pop(f"{kind}_fields")
    assert after == before
    # The upgrade ran this release's migrations (UPGRADING.md lists them).
    assert identity_revision(workdir) == release.current_heads()["identity"]
    assert identity_revision(workdir) != previous["heads"]["identity"]
    with sqlite3.connect(workdir / "var" / "identity.db") as db:
        kinds = {row[0] for row in db.execute("SELECT application_type FROM id_clients")}
    assert kinds == {"web"}  # clients registered before keep matching redirects exactly
    print(
        f"\nupgrade test: wheels {built - started:.1f}s, {previous['version']} up+seed "
        f"{first_run - built:.1f}s, upgrade+up {time.monotonic() - first_run:.1f}s"
    )
