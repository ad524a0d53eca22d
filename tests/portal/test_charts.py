"""Charts, time ranges and dashboards as data, without a server: nice ticks, full labels,
zeros for empty buckets, the range a query string asks for, layouts and JSON imports."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from contracts.timeseries import TimeSeriesQuery, counted
from portal import charts, timerange
from portal import dashboard_io as io
from portal.api import ApiError
from portal.widgets import view


class TestTicks:
    @pytest.mark.parametrize(
        ("top", "ticks"),
        [
            (1, [0, 1, 2]),
            (3, [0, 1, 2, 3]),
            (7, [0, 2, 4, 6, 8]),
            (12, [0, 2.5, 5, 7.5, 10, 12.5]),
            (95, [0, 20, 40, 60, 80, 100]),
            (0, [0, 1, 2]),
            (0.3, [0, 0.1, 0.2, 0.3]),
        ],
    )
    def test_several_nice_ticks_up_to_the_top(self, top: float, ticks: list[float]) -> None:
        assert charts.nice_ticks(top) == ticks

    def test_an_axis_of_one_value_has_several_ticks(self) -> None:
        chart = charts.bars(["Logistics"], [("Threads", [1.0])])
        assert [t for _, t in chart.ticks] == ["0", "1", "2"]
        over_time = charts.lines([date(2026, 12, d) for d in (1, 2, 3)], "day", [("x", [5, 5, 5])])
        assert len(over_time.yticks) >= 3


class TestBars:
    def test_long_labels_are_wrapped_whole_never_cut(self) -> None:
        label = "Manufacturing and industrial automation partners of the north region"
        chart = charts.bars([label, "Fatima Farouk"], [("Threads", [4.0, 2.0])])
        wrapped = " ".join(text for _, text in chart.rows[0].lines)
        assert wrapped == label and len(chart.rows[0].lines) > 1
        assert chart.rows[0].label == label, "the full label is the tooltip"
        assert chart.rows[1].lines[0][1] == "Fatima Farouk"
        assert chart.rows[0].bars[0].pct == 100 and chart.rows[1].bars[0].pct == 50
        assert chart.table.rows == [[label, "4"], ["Fatima Farouk", "2"]]
        assert label in chart.summary

    def test_several_series_have_a_legend(self) -> None:
        chart = charts.bars(["a"], [("One", [1.0]), ("Two", [2.0])])
        assert chart.legend == ["One", "Two"] and len(chart.rows[0].bars) == 2


class TestCounted:
    def test_empty_days_are_zeros_and_weeks_sum_days(self) -> None:
        q = TimeSeriesQuery(eco="acme", since=date(2026, 11, 30), until=date(2026, 12, 6))
        got = counted(q, [("replies", "2026-12-02", 3), ("replies", "2026-12-06 10:00", 1)])
        assert got.starts[0] == date(2026, 11, 30) and len(got.starts) == 7
        assert got.series[0].values == [0, 0, 3, 0, 0, 0, 1]
        weekly = TimeSeriesQuery(
            eco="acme", since=date(2026, 12, 2), until=date(2026, 12, 16), bucket="week"
        )
        got = counted(weekly, [("x", "2026-11-30", 2), ("x", "2026-12-08", 5)], ("x", "y"))
        assert got.starts == [date(2026, 11, 30), date(2026, 12, 7), date(2026, 12, 14)]
        assert [(s.name, s.values) for s in got.series] == [("x", [2, 5, 0]), ("y", [0, 0, 0])]

    def test_ranges_are_bounded(self) -> None:
        with pytest.raises(ValueError, match="before"):
            TimeSeriesQuery(eco="acme", since=date(2026, 2, 1), until=date(2026, 1, 1))
        with pytest.raises(ValueError, match="366"):
            TimeSeriesQuery(eco="acme", since=date(2024, 1, 1), until=date(2026, 1, 1))


class TestTimeRange:
    def test_presets_custom_and_refusals(self) -> None:
        on = date(2026, 12, 4)
        span, err = timerange.parse({"range": "7d"}, on)
        assert (span.since, span.until, span.bucket, err) == (date(2026, 11, 28), on, "day", None)
        span, _ = timerange.parse({"range": "90d"}, on)
        assert span.bucket == "week" and span.days == 90
        span, err = timerange.parse({"range": "custom", "from": "2026-01-01", "to": "2026-01-31"})
        assert span.params() == {"since": "2026-01-01", "until": "2026-01-31", "bucket": "day"}
        assert err is None and "range=custom" in span.query()
        for bad in (
            {"range": "custom", "from": "2026-02-01", "to": "2026-01-01"},
            {"range": "custom", "from": "soon", "to": "2026-01-01"},
            {"range": "custom", "from": "2020-01-01", "to": "2026-01-01"},
            {"range": "5y"},
        ):
            span, err = timerange.parse(bad, on)
            assert err and span.key == timerange.DEFAULT, bad


def _timeseries(values: dict[str, list[int]]) -> dict[str, Any]:
    starts = [f"2026-12-0{d}" for d in range(1, 4)]
    return {
        "bucket": "day",
        "starts": starts,
        "series": [{"name": k, "values": v} for k, v in values.items()],
    }


class TestWidgets:
    def test_people_and_companies_are_two_numbers_not_one_sum(self) -> None:
        widget = {
            "id": "w",
            "kind": "number",
            "title": "Ecosystem",
            "sources": ["people", "companies"],
        }
        got = view(widget, {"people": {"total": 8, "entries": []}, "companies": {"total": 4}})
        assert got.numbers == [
            ("People in the directory", 8.0),
            ("Companies in the directory", 4.0),
        ]

    def test_categories_are_bars_and_time_is_lines_whatever_was_saved(self) -> None:
        cats = {"items": [{"name": "Manufacturing", "thread_count": 3}]}
        for kind in ("chart", "line", "bar"):
            widget = {"id": "w", "kind": kind, "title": "t", "sources": ["categories"]}
            assert [c.form for c in view(widget, {"categories": cats}).charts] == ["bars"]
        widget = {"id": "w", "kind": "bar", "title": "t", "sources": ["posts_over_time"]}
        got = view(
            widget, {"posts_over_time": _timeseries({"threads": [0, 2, 0], "replies": [1, 0, 0]})}
        )
        (chart,) = got.charts
        assert isinstance(chart, charts.LineChart) and chart.legend == [
            "Threads started",
            "Replies",
        ]
        assert [r[0] for r in chart.table.rows] == ["2026-12-01", "2026-12-02", "2026-12-03"]

    def test_a_table_of_nothing_is_empty(self) -> None:
        widget = {"id": "w", "kind": "table", "title": "t", "sources": ["catalogue"]}
        assert view(widget, {"catalogue": {"items": []}}).empty

    def test_a_failed_source_is_reported_beside_the_others(self) -> None:
        widget = {"id": "w", "kind": "number", "title": "t", "sources": ["people", "companies"]}
        got = view(widget, {"people": {"total": 8}, "companies": ApiError(503, "x", "down")})
        assert got.numbers == [("People in the directory", 8.0)]
        assert got.failures[0][0] == "Companies in the directory"


def _widgets() -> list[dict[str, Any]]:
    return [{"id": i, "kind": "number", "title": i, "sources": ["people"]} for i in "abcde"]


class TestLayout:
    def test_moves_and_sizes_stay_on_the_grid(self) -> None:
        ws = _widgets()
        assert io.move(ws, "a", "right") and [w["id"] for w in ws] == list("bacde")
        assert io.move(ws, "a", "down", columns=2) and [w["id"] for w in ws] == list("bcdae")
        assert io.move(ws, "b", "left") and ws[0]["id"] == "b", "the first stays first"
        for _ in range(6):
            io.move(ws, "c", "wider")
        assert next(w for w in ws if w["id"] == "c")["w"] == io.COLUMNS
        for _ in range(6):
            io.move(ws, "c", "shorter")
        assert next(w for w in ws if w["id"] == "c")["h"] == 1
        assert not io.move(ws, "zz", "left") and not io.move(ws, "a", "sideways")

    def test_a_layout_names_every_widget_once(self) -> None:
        ws = _widgets()
        order = [{"id": i, "w": 1, "h": 2} for i in "edcba"]
        got = io.arrange(ws, io.Layout.model_validate({"widgets": order}))
        assert got is not None and [w["id"] for w in got] == list("edcba") and got[0]["h"] == 2
        assert io.arrange(ws, io.Layout.model_validate({"widgets": order[:4]})) is None
        twice = [*order[:4], order[0]]
        assert io.arrange(ws, io.Layout.model_validate({"widgets": twice})) is None


class TestImport:
    def test_an_export_imports_again(self) -> None:
        row = {"title": "KPIs", "widgets": [{**_widgets()[0], "w": 3, "h": 2}]}
        spec = io.parse_import(json.dumps(io.export(row)).encode())
        (widget,) = io.new_widgets(spec)
        assert spec.title == "KPIs" and widget["w"] == 3 and widget["sources"] == ["people"]

    @pytest.mark.parametrize(
        ("raw", "said"),
        [
            (b"", "Choose a JSON file"),
            (b"{not json", "not valid JSON (line 1, column 2"),
            (b"\xff\xfe", "not valid JSON"),
            (b"[1, 2]", "not an exported dashboard"),
            (b'{"format": "other"}', "not an exported dashboard"),
            (
                b'{"format": "partnermesh.dashboard", "version": 1, "title": "x",'
                b' "widgets": [{"kind": "pie", "title": "p", "sources": ["people"]}]}',
                "kind",
            ),
            (
                b'{"format": "partnermesh.dashboard", "version": 1, "title": "x",'
                b' "widgets": [{"kind": "number", "title": "p", "sources": ["secrets"]}]}',
                "unknown data sources: secrets",
            ),
            (b"[" * 100_000 + b"]" * 100_000, "larger than"),
        ],
    )
    def test_bad_json_is_refused_with_a_reason(self, raw: bytes, said: str) -> None:
        with pytest.raises(io.ImportRefused, match=said.replace("(", r"\(")):
            io.parse_import(raw)
