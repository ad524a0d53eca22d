"""Chart geometry for server-rendered SVG (templates/charts.html draws it; no script).

Two forms, chosen by the data: horizontal bars for categories (a full label above each
bar, wrapped, never cut) and lines for counts over time. Axes carry several ticks at
"nice" numbers (1, 2, 2.5 or 5 times a power of ten). Horizontal positions are
percentages of the chart's width, so the SVG fills its widget at any size while its
text keeps its size; only the lines themselves are drawn in a stretched inner viewBox.
Every chart carries its data as a table for people who do not see it.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from datetime import date

WRAP = 28  # characters of a category label per line
ROW_LINE, BAR_H, ROW_GAP = 15.0, 12.0, 10.0
AXIS_H = 22.0
PLOT_TOP, PLOT_H = 14.0, 160.0
DOTS_UP_TO = 45  # buckets; beyond this a line has no dots (the table has every value)


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Ticks from 0 to at least ``top``, about ``count`` steps of a nice size."""
    if top <= 0:
        return [0.0, 1.0, 2.0]
    if float(top).is_integer() and top <= 2:
        return [0.0, 1.0, 2.0]  # small counts: whole numbers, and never an axis of one value
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1 and float(top).is_integer():
        step = 1.0  # counts: no ticks between whole numbers
    steps = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def fmt(value: float) -> str:
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


@dataclass
class Table:
    """A chart's data for screen readers and anyone who prefers numbers."""

    columns: list[str]
    rows: list[list[str]]


@dataclass
class Bar:
    series: int
    name: str
    value: str
    pct: float
    y: float


@dataclass
class Row:
    label: str
    lines: list[tuple[float, str]]  # (baseline y, text) of the wrapped label
    value: str
    bars: list[Bar]


@dataclass
class BarChart:
    rows: list[Row]
    ticks: list[tuple[float, str]]  # (x %, text)
    height: float
    legend: list[str]
    table: Table
    summary: str
    form: str = "bars"


@dataclass
class Line:
    series: int
    name: str
    points: str  # in the inner viewBox 0..1000 × 0..PLOT_H
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # (x %, y, title)


@dataclass
class LineChart:
    lines: list[Line]
    yticks: list[tuple[float, str]]  # (y, text)
    xticks: list[tuple[float, str, str, bool]]  # (x %, text, text-anchor, minor)
    height: float
    legend: list[str]
    table: Table
    summary: str
    plot_top: float = PLOT_TOP
    plot_h: float = PLOT_H
    form: str = "lines"


def bars(categories: list[str], series: list[tuple[str, list[float]]]) -> BarChart:
    """Horizontal bars: one row per category, one bar per series in each row."""
    top = max((v for _, values in series for v in values), default=0.0)
    ticks = nice_ticks(top)
    scale = ticks[-1] or 1.0
    rows: list[Row] = []
    y = 0.0
    for i, category in enumerate(categories):
        wrapped = textwrap.wrap(category, WRAP, break_long_words=True) or ["—"]
        lines = [(y + ROW_LINE * (n + 1) - 3, text) for n, text in enumerate(wrapped)]
        y += ROW_LINE * len(wrapped) + 2
        row_bars = []
        for s, (name, values) in enumerate(series):
            value = values[i] if i < len(values) else 0.0
            row_bars.append(Bar(s, name, fmt(value), 100 * value / scale, y))
            y += BAR_H + 2
        shown = " / ".join(b.value for b in row_bars)
        rows.append(Row(category, lines, shown, row_bars))
        y += ROW_GAP
    names = [name for name, _ in series]
    table = Table(
        ["Item", *names],
        [
            [c, *(fmt(v[i] if i < len(v) else 0.0) for _, v in series)]
            for i, c in enumerate(categories)
        ],
    )
    summary = "; ".join(f"{r.label}: {r.value}" for r in rows)
    return BarChart(
        rows,
        [(100 * t / scale, fmt(t)) for t in ticks],
        y + AXIS_H,
        names if len(names) > 1 else [],
        table,
        summary,
    )


def _label(day: date, bucket: str) -> str:
    return day.strftime("%-d %b") if bucket == "day" else "wk " + day.strftime("%-d %b")


def _x(i: int, n: int) -> float:
    return 50.0 if n == 1 else 2 + 96 * i / (n - 1)


def lines(starts: list[date], bucket: str, series: list[tuple[str, list[float]]]) -> LineChart:
    """Counts over time: one line per series, a tick label on a few buckets."""
    n = len(starts)
    top = max((v for _, values in series for v in values), default=0.0)
    ticks = nice_ticks(top)
    scale = ticks[-1] or 1.0
    drawn = []
    for s, (name, values) in enumerate(series):
        ys = [PLOT_H * (1 - (values[i] if i < len(values) else 0.0) / scale) for i in range(n)]
        points = " ".join(f"{_x(i, n) * 10:.1f},{y:.1f}" for i, y in enumerate(ys))
        dots = []
        if n <= DOTS_UP_TO:
            dots = [
                (_x(i, n), PLOT_TOP + y, f"{name}, {_label(starts[i], bucket)}: {fmt(values[i])}")
                for i, y in enumerate(ys)
                if i < len(values)
            ]
        drawn.append(Line(s, name, points, dots))
    every = max(1, math.ceil(n / 6))
    shown = [i for i in range(n) if i % every == 0]
    xticks = []
    for k, i in enumerate(shown):
        anchor = "middle" if 0 < i < n - 1 or n == 1 else ("start" if i == 0 else "end")
        # every other label is minor: narrow charts hide those (portal.css), never overlap
        xticks.append((_x(i, n), _label(starts[i], bucket), anchor, k % 2 == 1))
    names = [name for name, _ in series]
    heading = "Week of" if bucket == "week" else "Day"
    table = Table(
        [heading, *names],
        [
            [d.isoformat(), *(fmt(v[i] if i < len(v) else 0.0) for _, v in series)]
            for i, d in enumerate(starts)
        ],
    )
    totals = ", ".join(f"{name} {fmt(sum(values))}" for name, values in series)
    span = f"{starts[0].isoformat()} to {starts[-1].isoformat()}" if starts else "no days"
    summary = f"Per {bucket} from {span}; totals: {totals or 'none'}"
    return LineChart(
        drawn,
        [(PLOT_TOP + PLOT_H * (1 - t / scale), fmt(t)) for t in ticks],
        xticks,
        PLOT_TOP + PLOT_H + AXIS_H,
        names if len(names) > 1 else [],
        table,
        summary,
    )
