"""Counting per UTC day in SQL, on SQLite and PostgreSQL alike.

Repositories group their rows by :class:`utc_day` of a timestamp column, inside the
half-open window :func:`window` gives for a :class:`contracts.timeseries.TimeSeriesQuery`;
``contracts.timeseries.counted`` turns the day counts into buckets with zeros.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from contracts.timeseries import TimeSeriesQuery


class utc_day(FunctionElement[str]):
    """``'YYYY-MM-DD'`` of a timestamp column, in UTC."""

    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day)
def _default(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps a timestamp as text, UTC, 'YYYY-MM-DD HH:MM:SS...' (every process stores UTC)
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_day, "postgresql")
def _postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def window(query: TimeSeriesQuery) -> tuple[datetime, datetime]:
    """``[start, end)`` of the query's buckets: from the first bucket's first day (a week
    starts on Monday, perhaps before ``since``) to the day after ``until``, in UTC."""
    first = query.starts()[0]
    start = datetime.combine(first, time(), tzinfo=UTC)
    end = datetime.combine(query.until + timedelta(days=1), time(), tzinfo=UTC)
    return start, end
