"""The time range of a dashboard's widgets: the last 7, 30 or 90 days, or from–to dates.

It travels in the page's query string (``?range=30d`` or ``?range=custom&from=…&to=…``),
so a link shows the same range; the services count per day up to 62 days, per week beyond.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from contracts.timeseries import MAX_DAYS

PRESETS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT = "30d"
DAILY_UP_TO = 62


@dataclass(frozen=True)
class TimeRange:
    key: str
    since: date
    until: date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def bucket(self) -> str:
        return "day" if self.days <= DAILY_UP_TO else "week"

    def params(self) -> dict[str, str]:
        """The aggregate operations' parameters (contracts.timeseries.TimeSeriesQuery)."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "bucket": self.bucket,
        }

    def query(self) -> str:
        if self.key in PRESETS:
            return urlencode({"range": self.key})
        pairs = {"range": "custom", "from": self.since.isoformat(), "to": self.until.isoformat()}
        return urlencode(pairs)

    def describe(self) -> str:
        if self.key in PRESETS:
            return f"the last {PRESETS[self.key]} days"
        return f"{self.since.isoformat()} to {self.until.isoformat()}"


def today() -> date:
    return datetime.now(UTC).date()


def preset(key: str, on: date) -> TimeRange:
    return TimeRange(key, on - timedelta(days=PRESETS[key] - 1), on)


def parse(args: Mapping[str, str], on: date | None = None) -> tuple[TimeRange, str | None]:
    """The range a query string asks for, and why it was not taken (then the default)."""
    on = on or today()
    key = args.get("range") or DEFAULT
    if key in PRESETS:
        return preset(key, on), None
    if key != "custom":
        return preset(DEFAULT, on), "Choose one of the ranges offered."
    try:
        since = date.fromisoformat(args.get("from", ""))
        until = date.fromisoformat(args.get("to", ""))
    except ValueError:
        return preset(DEFAULT, on), "Give the custom range as two dates (from and to)."
    if until < since:
        return preset(DEFAULT, on), "The range ends before it starts."
    if (until - since).days + 1 > MAX_DAYS:
        return preset(DEFAULT, on), f"A range spans at most {MAX_DAYS} days."
    return TimeRange("custom", since, until), None
