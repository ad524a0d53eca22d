"""identity's folders are its layers: a module imports its own folder or the ones below.

http, cli  →  lean  →  oauth  →  domain  →  store

``settings`` sits beside them all (every layer may read it; it imports nothing of
identity) and ``__main__`` wires the process (it may import anything). Imports are read
with ``ast`` from the source, including those inside functions, so a lazy import cannot
hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import identity

PACKAGE = Path(identity.__file__).parent
# Rank of each layer: a module may import a layer of lower rank, or its own folder.
RANK = {"store": 0, "domain": 1, "oauth": 2, "lean": 3, "http": 4, "cli": 4}
# Modules at the top of the package: where each belongs.
TOP = {
    "__init__": "top",
    "__main__": "entry",
    "settings": "settings",
}


def layer_of(module: str) -> str:
    """The layer of ``identity.<...>`` given as a dotted name relative to identity."""
    head = module.split(".", 1)[0]
    if head in RANK:
        return head
    if head in TOP:
        return TOP[head]
    raise AssertionError(f"identity.{module} is in no layer: put it in a folder")


def imported(source: str, package: str) -> set[str]:
    """Every identity module ``source`` imports, relative to identity (``store.models``).

    ``package`` is the importing module's package (for relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base == "identity" or not node.module:  # from identity import x: a module
                names = [f"{base}.{alias.name}" for alias in node.names]
            else:
                names = [base]
        else:
            continue
        found |= {n.removeprefix("identity.") for n in names if n.startswith("identity.")}
    return found


def violations(module: str, targets: set[str]) -> list[str]:
    """The imports of ``module`` that go against the layers."""
    mine = layer_of(module)
    bad = []
    for target in sorted(targets):
        theirs = layer_of(target)
        if mine == "entry" or theirs == "settings" or theirs == mine:
            continue
        if mine in ("settings", "top") or theirs not in RANK or mine not in RANK:
            bad.append(f"identity.{module} imports identity.{target}")
        elif RANK[theirs] >= RANK[mine]:
            bad.append(f"identity.{module} ({mine}) imports identity.{target} ({theirs})")
    return bad


def modules() -> dict[str, str]:
    """Every module of identity (dotted, relative to identity) → its source."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "migrations":
            continue
        found[".".join(rel.with_suffix("").parts)] = path.read_text()
    return found


class TestLayers:
    def test_every_module_is_in_a_layer(self) -> None:
        for module in modules():
            layer_of(module)

    def test_no_layer_imports_one_above_it(self) -> None:
        bad = []
        for module, source in modules().items():
            package = "identity." + module.rsplit(".", 1)[0] if "." in module else "identity"
            bad += violations(module, imported(source, package))
        assert bad == [], "\n".join(bad)

    def test_the_layers_are_the_folders(self) -> None:
        folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
        assert folders - {"migrations"} <= set(RANK), folders


class TestTheCheckCanFail:
    """The check itself, on sources written to break it."""

    @pytest.mark.parametrize(
        ("module", "source"),
        [
            ("store.models", "from identity.domain import keys\n"),
            ("domain.keys", "from identity.oauth.adapter import current\n"),
            ("oauth.grants", "from identity.http import pages\n"),
            ("domain.tokens", "def f():\n    from identity.http.runtime import X\n"),
            ("store.repository", "import identity.domain.crypto\n"),
            ("domain.keys", "from identity.lean import shortcut\n"),
            ("oauth.grants", "from ..http import app\n"),
            ("http.pages", "from identity.cli import seed\n"),
            ("cli.seed", "from identity.http.app import create_app\n"),
            ("settings", "from identity.store import models\n"),
            ("domain.keys", "from .. import http\n"),
        ],
    )
    def test_an_upward_import_is_reported(self, module: str, source: str) -> None:
        package = "identity." + module.rsplit(".", 1)[0] if "." in module else "identity"
        assert violations(module, imported(source, package))

    @pytest.mark.parametrize(
        ("module", "source"),
        [
            ("http.pages", "from identity.oauth.adapter import StarletteRequest\n"),
            ("oauth.grants", "from identity.domain import revocation\n"),
            ("domain.keys", "from identity.store import repository as repo\n"),
            ("domain.signin", "from identity.settings import IdentitySettings\n"),
            ("cli.seed", "from identity.domain import directory\n"),
            ("store.models", "from .transaction import Tx\n"),
            ("store.models", "from . import transaction\n"),
            ("__main__", "from identity.http.app import create_app\n"),
        ],
    )
    def test_a_downward_import_passes(self, module: str, source: str) -> None:
        package = "identity." + module.rsplit(".", 1)[0] if "." in module else "identity"
        assert violations(module, imported(source, package)) == []

    def test_a_module_outside_the_folders_is_reported(self) -> None:
        with pytest.raises(AssertionError, match="in no layer"):
            layer_of("helpers")
