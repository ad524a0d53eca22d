"""The connector's aggregates for dashboards: invocations, failures and webhook
deliveries over time, of the caller's partner (operators: of the whole ecosystem)."""

from __future__ import annotations

from contracts.claims import Claims
from contracts.timeseries import TimeSeries, TimeSeriesQuery, counted
from mesh.timeseries import window
from services.connector import access
from services.connector import stats_repository as repo
from services.connector.service import Connector


async def call_timeline(cx: Connector, claims: Claims, req: TimeSeriesQuery) -> TimeSeries:
    start, end = window(req)
    async with cx.db.transaction() as s:
        rows = await repo.calls_per_day(
            s, req.eco, claims.partner, access.is_operator(claims), start, end
        )
    return counted(req, rows, ("calls", "errors"))


async def delivery_timeline(cx: Connector, claims: Claims, req: TimeSeriesQuery) -> TimeSeries:
    start, end = window(req)
    async with cx.db.transaction() as s:
        rows = await repo.deliveries_per_day(
            s, req.eco, claims.partner, access.is_operator(claims), start, end
        )
    return counted(req, rows, ("delivered", "pending", "dead"))
