"""No module holds an asyncio primitive at module level.

An ``asyncio.Event``, ``Lock``, ``Condition``, ``Semaphore`` or ``Queue`` binds to the
event loop that first waits on it. Made at import, it is shared by every instance of a
service in the process and breaks for the second event loop that uses it (a flow runner
whose wake-up event a previous loop had bound stopped for good). Such state belongs to
the object that owns the loop's work (e.g. ``Connector.flow_wake``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "deploy", "gateway", "identity", "mesh", "portal", "services")
PRIMITIVES = {"Event", "Lock", "Condition", "Semaphore", "BoundedSemaphore", "Queue"}


def module_level_primitives(source: str) -> list[str]:
    """``name = asyncio.<Primitive>(...)`` statements at a module's top level."""
    found = []
    for node in ast.parse(source).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if not isinstance(value, ast.Call):
            continue
        func = value.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "asyncio"
            and func.attr in PRIMITIVES
        ):
            found.append(f"line {node.lineno}: asyncio.{func.attr}")
    return found


def test_the_check_finds_one() -> None:
    assert module_level_primitives("import asyncio\nwake = asyncio.Event()\n") == [
        "line 2: asyncio.Event"
    ]
    assert module_level_primitives("import asyncio\ndef f():\n    e = asyncio.Event()\n") == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_level_asyncio_primitives(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / package).rglob("*.py"))
        if (found := module_level_primitives(path.read_text()))
    }
    assert offenders == {}
