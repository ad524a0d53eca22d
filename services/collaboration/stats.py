"""Collaboration's aggregates for dashboards: forum writing over time."""

from __future__ import annotations

from contracts.timeseries import TimeSeries, TimeSeriesQuery, counted
from mesh.timeseries import window
from services.collaboration import stats_repository as repo
from services.collaboration.service import Deps, Who


async def post_timeline(deps: Deps, who: Who, req: TimeSeriesQuery) -> TimeSeries:
    """Threads started and replies posted in the ecosystem's forums, per bucket: what
    every member may read anyway (workspaces and hidden writing are left out)."""
    start, end = window(req)
    async with deps.transaction() as s:
        rows = await repo.forum_writing_per_day(s, req.eco, start, end)
    return counted(req, rows, ("threads", "replies"))
