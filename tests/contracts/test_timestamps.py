"""Every datetime a contract carries is written as RFC 3339 with an offset (UTC, ``Z``).

SQLite (and PostgreSQL's ``timestamp`` columns) hand datetimes back without a zone; the
contracts' one datetime type reads those as UTC, so no reply or event says a bare local
time that the OpenAPI ``date-time`` format refuses.
"""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, TypeAdapter

from contracts import registry
from contracts.timestamps import Timestamp, as_utc
from contracts.v1.collaboration_models import CategoryView

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
NAIVE = datetime(2026, 12, 3, 9, 32, 47, 901989)  # as SQLite hands it back


def is_rfc3339(value: object) -> bool:
    """A strict RFC 3339 date-time: the grammar, an offset, and a real instant."""
    if not isinstance(value, str) or not RFC3339.match(value):
        return False
    return datetime.fromisoformat(value).tzinfo is not None


def _mentions_datetime(annotation: object) -> bool:
    if annotation is datetime:
        return True
    return any(_mentions_datetime(a) for a in typing.get_args(annotation))


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models(a)]


def datetime_fields() -> list[tuple[str, object]]:
    """(model.field, the field's full annotation) of every datetime field of every model an
    operation or event carries, nested models included."""
    todo: list[type[BaseModel]] = [*registry.EVENT_TYPES]
    for op in registry.OPERATIONS:
        todo += [op.request, op.reply]
    seen: set[type[BaseModel]] = set()
    found: dict[str, object] = {}
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            annotation = info.rebuild_annotation()
            if _mentions_datetime(info.annotation):
                found[f"{model.__module__}.{model.__qualname__}.{name}"] = annotation
            todo += _models(info.annotation)
    return sorted(found.items())


DATETIME_FIELDS = datetime_fields()


class TestTimestamp:
    def test_a_naive_value_is_read_as_utc_and_written_with_z(self) -> None:
        value = TypeAdapter(Timestamp).validate_python(NAIVE)
        assert value == NAIVE.replace(tzinfo=UTC)
        written = TypeAdapter(Timestamp).dump_json(value).decode().strip('"')
        assert written == "2026-12-03T09:32:47.901989Z"
        assert is_rfc3339(written)

    def test_an_aware_value_keeps_its_instant_in_utc(self) -> None:
        berlin = NAIVE.replace(tzinfo=timezone(timedelta(hours=1)))
        assert as_utc(berlin) == berlin
        assert as_utc(berlin).utcoffset() == timedelta(0)
        assert as_utc(berlin).hour == 8

    def test_a_string_without_offset_from_the_bus_is_read_as_utc(self) -> None:
        view = CategoryView.model_validate(
            {
                "slug": "s",
                "name": "n",
                "description": "",
                "created_at": "2026-12-03T09:32:47.901989",
            }
        )
        assert view.model_dump(mode="json")["created_at"] == "2026-12-03T09:32:47.901989Z"

    def test_its_json_schema_is_a_date_time(self) -> None:
        schema = TypeAdapter(Timestamp).json_schema()
        assert schema == {"type": "string", "format": "date-time"}

    @pytest.mark.parametrize(
        "text",
        ["2026-12-03T09:32:47.901989", "2026-12-03 09:32:47Z", "2026-12-03", "yesterday", 3],
    )
    def test_the_strict_check_refuses_what_rfc_3339_does_not_allow(self, text: str | int) -> None:
        assert not is_rfc3339(text)


class TestEveryContractDatetime:
    def test_the_walk_finds_the_datetimes_of_replies_and_events(self) -> None:
        names = {
            name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1] for name, _ in DATETIME_FIELDS
        }
        assert {"CategoryView.created_at", "EventGrantReply.revoked_at"} <= names
        assert len(DATETIME_FIELDS) >= 30

    @pytest.mark.parametrize(
        ("name", "annotation"), DATETIME_FIELDS, ids=[n for n, _ in DATETIME_FIELDS]
    )
    def test_a_naive_database_value_is_written_as_rfc_3339_with_offset(
        self, name: str, annotation: typing.Any
    ) -> None:
        adapter: TypeAdapter[typing.Any] = TypeAdapter(annotation)
        written = adapter.dump_python(adapter.validate_python(NAIVE), mode="json")
        assert is_rfc3339(written), f"{name} writes {written!r}"
