"""The dependency direction CONTRIBUTING.md draws, checked on the real imports.

``contracts`` imports none of the project; ``mesh`` only ``contracts``; identity, the
gateway, the portal and each service only ``contracts`` and ``mesh`` (a service never
imports another service); nothing imports ``deploy``, ``bench`` or ``tests``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "mesh", "identity", "gateway", "portal", "services", "deploy", "bench")
ALLOWED: dict[str, set[str]] = {
    "contracts": set(),
    "mesh": {"contracts"},
    "identity": {"contracts", "mesh"},
    "gateway": {"contracts", "mesh"},
    "portal": {"contracts", "mesh"},
    "service": {"contracts", "mesh"},  # each of services/<name>, besides itself
}


def unit(parts: tuple[str, ...]) -> str:
    """``services.profile`` for anything under services/profile; else the top package."""
    return ".".join(parts[:2]) if parts[0] == "services" and len(parts) > 1 else parts[0]


def project_imports(path: Path) -> set[str]:
    """The project units a module imports (absolute imports; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = tuple(name.split("."))
            if parts[0] in (*PACKAGES, "tests"):
                found.add(unit(parts))
    return found


def violations(me: str, imports: set[str]) -> list[str]:
    """What unit ``me`` (``mesh``, ``services.profile``…) may not import among ``imports``."""
    rule = "service" if me.startswith("services.") else me
    if rule not in ALLOWED:
        return []  # deploy and bench sit on top (and services/__init__.py imports nothing)
    allowed = ALLOWED[rule] | {me}
    return [f"{me} imports {dep}" for dep in sorted(imports - allowed)]


def unit_of(path: Path) -> str:
    return unit(path.relative_to(ROOT).with_suffix("").parts)


def modules() -> list[Path]:
    return sorted(p for top in PACKAGES for p in (ROOT / top).rglob("*.py"))


class TestDependencyDirection:
    @pytest.mark.parametrize("top", PACKAGES)
    def test_every_package_keeps_to_its_imports(self, top: str) -> None:
        found = [
            f"{path.relative_to(ROOT)}: {problem}"
            for path in sorted((ROOT / top).rglob("*.py"))
            for problem in violations(unit_of(path), project_imports(path))
        ]
        assert not found, "\n".join(found)

    def test_nothing_imports_deploy_bench_or_tests(self) -> None:
        found = [
            f"{path.relative_to(ROOT)} imports {dep}"
            for path in modules()
            if path.relative_to(ROOT).parts[0] not in ("deploy", "bench")
            for dep in project_imports(path) & {"deploy", "bench", "tests"}
        ]
        assert not found, "\n".join(found)

    @pytest.mark.parametrize(
        ("me", "source", "refused"),
        [
            ("services.profile", "from services.matching import service", "services.matching"),
            ("mesh", "import gateway.app", "gateway"),
            ("contracts", "from mesh.db import Database", "mesh"),
            ("gateway", "from identity.store import models", "identity"),
            ("portal", "from services.profile import views", "services.profile"),
        ],
    )
    def test_an_import_against_the_direction_is_reported(
        self, tmp_path: Path, me: str, source: str, refused: str
    ) -> None:
        probe = tmp_path / "probe.py"
        probe.write_text(f"{source}\nfrom contracts.claims import Role\n")
        assert violations(me, project_imports(probe)) == [f"{me} imports {refused}"]

    def test_imports_along_the_direction_pass(self) -> None:
        handlers = ROOT / "services" / "profile" / "handlers.py"
        assert unit_of(handlers) == "services.profile"
        assert project_imports(handlers) >= {"contracts", "mesh", "services.profile"}
        assert violations("services.profile", project_imports(handlers)) == []
