"""Counts over time, as every service's aggregate operations ask and answer them.

A query names a range of whole UTC days (``since`` to ``until``, both included) and a
bucket (a day, or an ISO week starting on Monday). A reply has one start date per
bucket and, per series, one count per bucket: a bucket without anything is a zero,
so a chart never skips an empty day or week. Services count in SQL per day
(:func:`counted`); turning those day counts into buckets is written once, here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

MAX_DAYS = 366
Bucket = Literal["day", "week"]


class TimeSeriesQuery(BaseModel):
    eco: str = Field(min_length=1, max_length=128)
    since: date = Field(description="First day of the range (UTC), included")
    until: date = Field(description="Last day of the range (UTC), included")
    bucket: Bucket = Field(default="day", description="Count per day, or per ISO week")

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.until < self.since:
            raise ValueError("until is before since")
        if (self.until - self.since).days + 1 > MAX_DAYS:
            raise ValueError(f"a range spans at most {MAX_DAYS} days")
        return self

    def starts(self) -> list[date]:
        """The first day of every bucket of the range, in order."""
        first = self.since if self.bucket == "day" else _monday(self.since)
        step = timedelta(days=1 if self.bucket == "day" else 7)
        out: list[date] = []
        while first <= self.until:
            out.append(first)
            first += step
        return out

    def bucket_of(self, day: date) -> date:
        return day if self.bucket == "day" else _monday(day)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


class TimeSeriesLine(BaseModel):
    name: str = Field(max_length=64, description="What is counted, e.g. a status")
    values: list[int] = Field(max_length=MAX_DAYS + 1, description="One count per bucket")


class TimeSeries(BaseModel):
    bucket: Bucket
    starts: list[date] = Field(max_length=MAX_DAYS + 1, description="First day of each bucket")
    series: list[TimeSeriesLine] = Field(max_length=32)


def counted(
    query: TimeSeriesQuery, rows: Iterable[tuple[str, str, int]], names: Sequence[str] = ()
) -> TimeSeries:
    """A reply from ``(series name, 'YYYY-MM-DD' day, count)`` rows: every series of
    ``names`` (then any other that came up) with a count for every bucket, zeros included."""
    starts = query.starts()
    index = {d: i for i, d in enumerate(starts)}
    lines: dict[str, list[int]] = {name: [0] * len(starts) for name in names}
    for name, day, count in rows:
        at = index.get(query.bucket_of(date.fromisoformat(str(day)[:10])))
        if at is None:
            continue
        lines.setdefault(str(name), [0] * len(starts))[at] += int(count)
    return TimeSeries(
        bucket=query.bucket,
        starts=starts,
        series=[TimeSeriesLine(name=k, values=v) for k, v in list(lines.items())[:32]],
    )
