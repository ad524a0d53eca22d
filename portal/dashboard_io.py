"""A dashboard's widgets as data: their layout on the grid, and a dashboard as JSON to
export and import (validated whole before anything is saved).

The grid has ``COLUMNS`` columns; a widget spans ``w`` of them and ``h`` rows, and the
order of the widgets is the order they fill the grid in.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portal.api import plain_errors
from portal.widgets import KINDS, LEGACY, SOURCES

COLUMNS, MAX_ROWS = 4, 3
MAX_WIDGETS = 12
FORMAT: Literal["partnermesh.dashboard"] = "partnermesh.dashboard"
VISIBILITIES = {
    "private": "Only me",
    "company": "My company",
    "ecosystem": "The whole ecosystem",
}
MOVES = ("left", "right", "up", "down", "wider", "narrower", "taller", "shorter")
MAX_IMPORT_BYTES = 64 * 1024


def sized(widget: dict[str, Any]) -> dict[str, Any]:
    """``widget`` with a width and height on the grid (saved before layouts: 2 × 1)."""
    w, h = widget.get("w"), widget.get("h")
    w = w if isinstance(w, int) and 1 <= w <= COLUMNS else 2
    h = h if isinstance(h, int) and 1 <= h <= MAX_ROWS else 1
    return {
        **widget,
        "kind": LEGACY.get(widget.get("kind", ""), widget.get("kind")),
        "w": w,
        "h": h,
    }


def move(widgets: list[dict[str, Any]], widget: str, how: str, columns: int = COLUMNS) -> bool:
    """Move or resize one widget in place; False when there is no such widget or move."""
    at = next((i for i, w in enumerate(widgets) if w["id"] == widget), None)
    if at is None or how not in MOVES:
        return False
    w = widgets[at] = sized(widgets[at])
    if how in ("left", "right", "up", "down"):
        step = {"left": -1, "right": 1, "up": -columns, "down": columns}[how]
        to = max(0, min(len(widgets) - 1, at + step))
        widgets.insert(to, widgets.pop(at))
    elif how in ("wider", "narrower"):
        w["w"] = max(1, min(COLUMNS, w["w"] + (1 if how == "wider" else -1)))
    else:
        w["h"] = max(1, min(MAX_ROWS, w["h"] + (1 if how == "taller" else -1)))
    return True


class LayoutItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(max_length=16)
    w: int = Field(ge=1, le=COLUMNS)
    h: int = Field(ge=1, le=MAX_ROWS)


class Layout(BaseModel):
    """The whole grid as the page's script sends it after a drag: every widget, in order."""

    model_config = ConfigDict(extra="forbid")
    widgets: list[LayoutItem] = Field(max_length=MAX_WIDGETS)


def arrange(widgets: list[dict[str, Any]], layout: Layout) -> list[dict[str, Any]] | None:
    """The widgets in the layout's order and sizes; None unless it names each exactly once."""
    by_id = {w["id"]: w for w in widgets}
    ids = [item.id for item in layout.widgets]
    if sorted(ids) != sorted(by_id) or len(set(ids)) != len(ids):
        return None
    return [{**sized(by_id[i.id]), "w": i.w, "h": i.h} for i in layout.widgets]


class WidgetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    title: str = Field(min_length=1, max_length=120)
    sources: list[str] = Field(min_length=1, max_length=len(SOURCES))
    w: int = Field(default=2, ge=1, le=COLUMNS)
    h: int = Field(default=1, ge=1, le=MAX_ROWS)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        value = LEGACY.get(value, value)
        if value not in KINDS:
            raise ValueError(f"is not one of: {', '.join(KINDS)}")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in SOURCES]
        if unknown:
            raise ValueError(f"names unknown data sources: {', '.join(unknown)[:200]}")
        return list(dict.fromkeys(value))


class DashboardSpec(BaseModel):
    """A dashboard as exported: what it shows and how it is laid out, not who sees it."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["partnermesh.dashboard"]
    version: Literal[1]
    title: str = Field(min_length=1, max_length=200)
    widgets: list[WidgetSpec] = Field(max_length=MAX_WIDGETS)


def export(row: dict[str, Any]) -> dict[str, Any]:
    widgets = [sized(w) for w in row["widgets"]]
    return DashboardSpec(
        format=FORMAT,
        version=1,
        title=row["title"],
        widgets=[
            WidgetSpec(kind=w["kind"], title=w["title"], sources=w["sources"], w=w["w"], h=w["h"])
            for w in widgets
        ],
    ).model_dump()


class ImportRefused(Exception):
    """What is wrong with an import, in words a person can act on."""


def parse_import(raw: bytes) -> DashboardSpec:
    if not raw.strip():
        raise ImportRefused("Choose a JSON file, or paste the JSON of a dashboard.")
    if len(raw) > MAX_IMPORT_BYTES:
        raise ImportRefused(f"The JSON is larger than {MAX_IMPORT_BYTES // 1024} KiB.")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImportRefused(
            f"This is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    except UnicodeDecodeError:
        raise ImportRefused("This is not valid JSON (it is not UTF-8 text).") from None
    except RecursionError:
        raise ImportRefused("The JSON nests too deeply.") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ImportRefused(f'This is not an exported dashboard (its "format" is not "{FORMAT}").')
    try:
        return DashboardSpec.model_validate(doc)
    except ValidationError as exc:
        said = plain_errors(exc.errors(include_url=False, include_input=False))
        raise ImportRefused(f"The dashboard cannot be imported. {said or ''}".strip()) from None


def new_widgets(spec: DashboardSpec) -> list[dict[str, Any]]:
    return [{"id": secrets.token_hex(4), **w.model_dump()} for w in spec.widgets]
