"""Dashboard widgets: the data sources they can draw from, and how a widget turns the
sources' replies into what it shows (numbers, tables, SVG charts, tag clouds, lists)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from portal.api import ApiError, Call, build

KINDS = {
    "number": "Number",
    "table": "Table",
    "bar": "Bar chart",
    "line": "Line chart",
    "cloud": "Tag cloud",
    "list": "List",
}


@dataclass(frozen=True)
class Source:
    key: str
    label: str
    op: str
    params: dict[str, Any]
    items: str
    label_field: str
    value_field: str | None = None
    total: str | None = None

    def call(self, eco: str, me: str, partner: str | None) -> Call:
        fill = {"{me}": me, "{partner}": partner or ""}
        return build(
            self.op,
            eco,
            {k: fill.get(v, v) if isinstance(v, str) else v for k, v in self.params.items()},
        )


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source(
            "people",
            "People in the directory",
            "profile.directory.search",
            {"kind": "person", "page_size": 100},
            "entries",
            "name",
            total="total",
        ),
        Source(
            "companies",
            "Companies in the directory",
            "profile.directory.search",
            {"kind": "company", "page_size": 100},
            "entries",
            "name",
            total="total",
        ),
        Source(
            "categories",
            "Threads per forum category",
            "collaboration.forums.list_categories",
            {},
            "items",
            "name",
            "thread_count",
        ),
        Source(
            "introductions",
            "My introductions by status",
            "matching.list_introductions",
            {},
            "introductions",
            "status",
        ),
        Source(
            "suggestions",
            "My suggested contacts",
            "matching.person_suggestions",
            {"person": "{me}", "k": 10},
            "suggestions",
            "name",
            "score",
        ),
        Source(
            "my_cloud",
            "My tag cloud",
            "profile.person.card",
            {"person": "{me}", "limit": 30},
            "cloud.terms",
            "term",
            "weight",
        ),
        Source(
            "company_cloud",
            "My company's tag cloud",
            "profile.company.card",
            {"partner": "{partner}", "limit": 30},
            "cloud.terms",
            "term",
            "weight",
        ),
        Source(
            "workspaces", "My workspaces", "collaboration.workspaces.list", {}, "items", "title"
        ),
        Source("mentions", "My mentions", "collaboration.notifications.list", {}, "items", "actor"),
        Source(
            "catalogue",
            "Connector operations offered to us",
            "connector.catalogue",
            {},
            "items",
            "id",
        ),
        Source(
            "verifications",
            "Latest verifications (brokers and operators)",
            "profile.verification.audit",
            {"limit": 50},
            "entries",
            "target",
        ),
        Source(
            "connector_calls",
            "Connector calls by operation",
            "connector.audit",
            {"limit": 200},
            "items",
            "operation",
        ),
    )
}


def dig(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


@dataclass
class Series:
    source: Source
    points: list[tuple[str, float]]
    total: float


def series(source: Source, doc: Any) -> Series:
    items = dig(doc, source.items)
    items = items if isinstance(items, list) else []
    if source.value_field is None:
        counts = Counter(str(dig(i, source.label_field) or "—") for i in items)
        points = [(k, float(v)) for k, v in counts.most_common()]
    else:
        points = [
            (str(dig(i, source.label_field) or "—"), _num(dig(i, source.value_field)))
            for i in items
        ]
    total = dig(doc, source.total) if source.total else None
    return Series(source, points, _num(total) if total is not None else float(len(items)))


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@dataclass
class WidgetView:
    id: str
    kind: str
    title: str
    failures: list[tuple[str, ApiError]] = field(default_factory=list)
    sources: int = 0
    number: float | None = None
    rows: list[tuple[str, str, float]] = field(default_factory=list)
    points: list[tuple[str, float]] = field(default_factory=list)
    chart: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return self.number is None and not self.rows and not self.points


def view(widget: dict[str, Any], results: dict[str, Any]) -> WidgetView:
    out = WidgetView(widget["id"], widget["kind"], widget["title"])
    got: list[Series] = []
    for key in widget.get("sources", []):
        source = SOURCES.get(key)
        if source is None:
            continue
        out.sources += 1
        result = results.get(key)
        if isinstance(result, ApiError):
            out.failures.append((source.label, result))
        else:
            got.append(series(source, result))
    if got:
        _fill(out, got)
    return out


def _fill(out: WidgetView, got: list[Series]) -> None:
    if out.kind == "number":
        out.number = sum(s.total for s in got)
        out.rows = [(s.source.label, "", s.total) for s in got] if len(got) > 1 else []
    elif out.kind == "table":
        out.rows = [(s.source.label, k, v) for s in got for k, v in s.points[:50]]
    elif out.kind in ("bar", "line"):
        pts = got[0].points[:12] if len(got) == 1 else [(s.source.label, s.total) for s in got]
        out.points = pts
        out.chart = chart(pts, out.kind)
    elif out.kind == "cloud":
        merged: dict[str, float] = {}
        for s in got:
            for k, v in s.points:
                merged[k] = max(merged.get(k, 0.0), v)
        top = max(merged.values(), default=0.0) or 1.0
        out.points = sorted(((k, v / top) for k, v in merged.items()), key=lambda p: -p[1])[:40]
    else:
        out.points = [p for s in got for p in s.points][:20]


W, H, PAD = 360.0, 200.0, 24.0


def chart(points: list[tuple[str, float]], kind: str) -> dict[str, Any]:
    """Geometry of an SVG bar or line chart (rendered by the template, no script needed)."""
    top = max((v for _, v in points), default=0.0) or 1.0
    n = max(len(points), 1)
    step = (W - 2 * PAD) / n
    bars, dots = [], []
    for i, (label, value) in enumerate(points):
        h = (H - 2 * PAD) * value / top
        x = PAD + i * step
        width = min(step * 0.8, 48.0)
        bars.append(
            {
                "x": x + (step - width) / 2,
                "y": H - PAD - h,
                "w": width,
                "h": h,
                "label": label[:10],
                "value": value,
                "cx": x + step / 2,
            }
        )
        dots.append(f"{x + step / 2:.1f},{H - PAD - h:.1f}")
    return {
        "w": W,
        "h": H,
        "pad": PAD,
        "bars": bars,
        "line": " ".join(dots),
        "top": top,
        "kind": kind,
    }
