"""Matching's aggregates for dashboards: introductions by status over time."""

from __future__ import annotations

from contracts.claims import Claims
from contracts.timeseries import TimeSeries, TimeSeriesQuery, counted
from mesh.db import Database
from mesh.timeseries import window
from services.matching import stats_repository as repo
from services.matching.settings import MatchingSettings
from services.matching.workflow import is_curator

STATUSES = ("proposed", "approved", "accepted", "connected", "declined")


async def introduction_timeline(
    db: Database, settings: MatchingSettings, claims: Claims, req: TimeSeriesQuery
) -> TimeSeries:
    """How many introductions reached each status per bucket: the caller's own (as a
    party), or all of the ecosystem's for brokers and operators. Parties never see the
    proposals still waiting for a broker when curation is required, as in the list."""
    curator = is_curator(claims)
    hide = ("proposed",) if (settings.curation_required and not curator) else ()
    start, end = window(req)
    async with db.transaction() as s:
        rows = await repo.transitions_per_day(
            s, req.eco, start, end, None if curator else claims.sub, hide
        )
    names = [n for n in STATUSES if n not in hide]
    return counted(req, rows, names)
