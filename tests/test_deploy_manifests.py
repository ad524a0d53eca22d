"""Deployment manifests parse and start only processes that exist in this repository."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def python_modules(doc: object) -> list[str]:
    """Every ``python -m X`` found in a parsed manifest."""
    found: list[str] = []
    if isinstance(doc, dict):
        for value in doc.values():
            found += python_modules(value)
    elif isinstance(doc, list):
        if len(doc) >= 3 and doc[:2] == ["python", "-m"]:
            found.append(doc[2])
        for value in doc:
            found += python_modules(value)
    return found


class TestManifests:
    @pytest.mark.parametrize(
        "path", [*sorted(DEPLOY.glob("k8s/*.yaml")), DEPLOY / "compose.yaml"], ids=lambda p: p.name
    )
    def test_parses_and_runs_real_modules(self, path: Path) -> None:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs
        for module in python_modules(docs):
            assert importlib.util.find_spec(f"{module}.__main__") is not None, (
                f"{path.name} runs {module}, which has no __main__"
            )
