"""Schema names are the public API of every generated SDK: short, readable and unique.

pydantic names a schema after its class and, when two classes share a name, falls back to
the Python module path (``contracts__v1__profile__AuditEntry``): a name that leaks the
code's layout into clients and makes generators drop models. So every model that crosses
a boundary has a name of its own, and the generated documents carry no module path.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from contracts import registry
from contracts.errors import ErrorBody
from contracts.export import asyncapi, json_schemas
from gateway import mashup
from gateway.openapi import openapi_document

# A class name, and pydantic's -Input / -Output for a model whose validation and
# serialization schemas differ.
NAME = re.compile(r"^[A-Z][A-Za-z0-9]*(-Input|-Output)?$")


def _nested(annotation: Any) -> typing.Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _nested(arg)


def boundary_models() -> dict[type[BaseModel], None]:
    """Every model reachable from an operation, an event, the error body or a mashup."""
    todo: list[type[BaseModel]] = [ErrorBody, mashup.MashupRequest, mashup.MashupReply]
    for op in registry.OPERATIONS:
        todo += [op.request, op.reply]
    todo += list(registry.EVENT_TYPES)
    seen: dict[type[BaseModel], None] = {}
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen[model] = None
        for field in model.model_fields.values():
            todo.extend(_nested(field.annotation))
    return seen


def clashes(models: typing.Iterable[type[BaseModel]]) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for model in models:
        by_name.setdefault(model.__name__, []).append(f"{model.__module__}.{model.__qualname__}")
    return {name: sorted(paths) for name, paths in by_name.items() if len(paths) > 1}


DOCUMENTS = {
    "openapi.json": lambda: openapi_document()["components"]["schemas"],
    "asyncapi.json": lambda: asyncapi()["components"]["schemas"],
    "schemas.json": lambda: json_schemas()["$defs"],
}


class TestSchemaNames:
    def test_no_two_boundary_models_share_a_name(self) -> None:
        models = boundary_models()
        assert len(models) > 100  # the walk reaches the nested models, not only the top ones
        assert clashes(models) == {}, "rename one of each pair: generated SDKs need unique names"

    @pytest.mark.parametrize("document", sorted(DOCUMENTS))
    def test_generated_names_are_class_names_without_module_paths(self, document: str) -> None:
        names = list(DOCUMENTS[document]())
        bad = [n for n in names if "__" in n or not NAME.match(n)]
        assert bad == [], f"{document}: schema names leak module paths or are unreadable"

    def test_the_check_catches_a_clash(self) -> None:
        """A second ``DirectoryEntry`` in another module is reported with both paths."""
        from contracts.v1.profile import DirectoryEntry

        twin = type("DirectoryEntry", (BaseModel,), {"__module__": "contracts.v1.elsewhere"})
        found = clashes([DirectoryEntry, twin])
        assert found == {
            "DirectoryEntry": [
                "contracts.v1.elsewhere.DirectoryEntry",
                "contracts.v1.profile.DirectoryEntry",
            ]
        }
