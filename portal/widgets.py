"""Dashboard widgets: the data sources they can draw from, and how a widget turns the
sources' replies into what it shows (numbers, tables, SVG charts, tag clouds, lists).

A source is either a list of items (counted, or valued, per label: categories) or a
time series from a service's aggregate operation (counts per day or week over the
dashboard's time range); charts take the form that fits: bars for categories, lines
over time (portal.charts)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from portal import charts
from portal.api import ApiError, Call, build
from portal.timerange import TimeRange

KINDS = {
    "number": "Numbers",
    "chart": "Chart (bars for categories, lines over time)",
    "table": "Table",
    "cloud": "Tag cloud",
    "list": "List",
}
# Kinds of widgets saved before charts chose their form from the data.
LEGACY = {"bar": "chart", "line": "chart"}


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
    over_time: bool = False
    names: dict[str, str] = field(default_factory=dict)  # series name → what people read

    def call(self, eco: str, me: str, partner: str | None, span: TimeRange) -> Call:
        fill = {"{me}": me, "{partner}": partner or ""}
        params = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in self.params.items()}
        return build(self.op, eco, {**params, **(span.params() if self.over_time else {})})


def _timeline(key: str, label: str, op: str, names: dict[str, str]) -> Source:
    return Source(key, label, op, {}, "series", "name", over_time=True, names=names)


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
        _timeline(
            "posts_over_time",
            "Forum posts over time",
            "collaboration.stats.posts",
            {"threads": "Threads started", "replies": "Replies"},
        ),
        _timeline(
            "introductions_over_time",
            "Introductions by status over time",
            "matching.introduction_timeline",
            {},
        ),
        _timeline(
            "connector_over_time",
            "Connector calls and errors over time",
            "connector.call_timeline",
            {"calls": "Calls", "errors": "Errors"},
        ),
        _timeline(
            "deliveries_over_time",
            "Webhook deliveries over time",
            "connector.delivery_timeline",
            {},
        ),
    )
}


def dig(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@dataclass
class Series:
    """A source's reply as categories: (label, value) points and its total."""

    source: Source
    points: list[tuple[str, float]]
    total: float


@dataclass
class Timeline:
    """A source's reply over time: a start date per bucket, named lines of counts."""

    source: Source
    bucket: str
    starts: list[date]
    lines: list[tuple[str, list[float]]]

    def totals(self) -> list[tuple[str, float]]:
        return [(name, sum(values)) for name, values in self.lines]


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


def timeline(source: Source, doc: Any) -> Timeline:
    starts: list[date] = []
    for raw in dig(doc, "starts") or []:
        try:
            starts.append(date.fromisoformat(str(raw)))
        except ValueError:
            continue
    lines = []
    for line in dig(doc, "series") or []:
        name = str(dig(line, "name") or "—")
        values = [_num(v) for v in (dig(line, "values") or [])][: len(starts)]
        label = source.names.get(name, name[:1].upper() + name[1:])
        lines.append((label, values + [0.0] * (len(starts) - len(values))))
    return Timeline(source, str(dig(doc, "bucket") or "day"), starts, lines)


Chart = charts.BarChart | charts.LineChart


@dataclass
class WidgetView:
    id: str
    kind: str
    title: str
    failures: list[tuple[str, ApiError]] = field(default_factory=list)
    sources: int = 0
    numbers: list[tuple[str, float]] = field(default_factory=list)
    tables: list[charts.Table] = field(default_factory=list)
    points: list[tuple[str, float]] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.numbers or self.tables or self.points or self.charts)


def view(widget: dict[str, Any], results: dict[str, Any]) -> WidgetView:
    kind = LEGACY.get(widget["kind"], widget["kind"])
    out = WidgetView(widget["id"], kind, widget["title"])
    got: list[Series] = []
    over_time: list[Timeline] = []
    for key in widget.get("sources", []):
        source = SOURCES.get(key)
        if source is None:
            continue
        out.sources += 1
        result = results.get(key)
        if isinstance(result, ApiError):
            out.failures.append((source.label, result))
        elif source.over_time:
            over_time.append(timeline(source, result))
        else:
            got.append(series(source, result))
    if got or over_time:
        _fill(out, got, over_time)
    return out


def _named(t: Timeline, name: str, several: bool) -> str:
    return f"{t.source.label}: {name}" if several else name


def _fill(out: WidgetView, got: list[Series], over_time: list[Timeline]) -> None:
    several = len(over_time) > 1
    lines = [(_named(t, n, several), v) for t in over_time for n, v in t.lines]
    if out.kind == "number":
        # Each source (and each line of a time series) is its own number: people and
        # companies are two counts, never one sum.
        out.numbers = [(s.source.label, s.total) for s in got]
        out.numbers += [(_named(t, n, True), v) for t in over_time for n, v in t.totals()]
    elif out.kind == "table":
        rows = [[s.source.label, k, charts.fmt(v)] for s in got for k, v in s.points[:50]]
        if rows:
            out.tables.append(charts.Table(["Source", "Item", "Value"], rows))
        if over_time:
            out.tables.append(_chart_lines(over_time[0], lines).table)
    elif out.kind == "chart":
        if got:
            if len(got) == 1:
                pts = got[0].points[:12]
                name = got[0].source.label
            else:
                pts = [(s.source.label, s.total) for s in got]
                name = "Total"
            out.charts.append(charts.bars([k for k, _ in pts], [(name, [v for _, v in pts])]))
        if over_time:
            out.charts.append(_chart_lines(over_time[0], lines))
    elif out.kind == "cloud":
        merged: dict[str, float] = {}
        for s in got:
            for k, v in s.points:
                merged[k] = max(merged.get(k, 0.0), v)
        top = max(merged.values(), default=0.0) or 1.0
        out.points = sorted(((k, v / top) for k, v in merged.items()), key=lambda p: -p[1])[:40]
    else:
        out.points = [p for s in got for p in s.points][:20]
        out.points += [(n, sum(v)) for n, v in lines][:20]


def _chart_lines(first: Timeline, lines: list[tuple[str, list[float]]]) -> charts.LineChart:
    """One line chart of every time series (they share the dashboard's range and bucket)."""
    return charts.lines(first.starts, first.bucket, lines[:8])
