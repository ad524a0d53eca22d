"""Fallback load generator (when ``wrk`` is not installed), run in its own process.

``python -m bench._pyload URL HEADERS_JSON SECONDS CONNECTIONS [BODY]`` prints one JSON line:
requests/s, p50 and p99 latency in ms, request count and non-2xx count. With BODY, each
request is a POST of that body (set its Content-Type in HEADERS_JSON); else a GET.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def load(
    url: str, headers: dict[str, str], seconds: float, conns: int, body: str | None = None
) -> dict[str, float]:
    latencies: list[float] = []
    bad = 0

    async def worker(client: httpx.AsyncClient, end: float) -> None:
        nonlocal bad
        while time.perf_counter() < end:
            started = time.perf_counter()
            if body is None:
                r = await client.get(url, headers=headers)
            else:
                r = await client.post(url, headers=headers, content=body)
            latencies.append(time.perf_counter() - started)
            bad += not 200 <= r.status_code < 300

    limits = httpx.Limits(max_connections=conns)
    async with httpx.AsyncClient(limits=limits, timeout=5) as client:
        end = time.perf_counter() + seconds
        await asyncio.gather(*(worker(client, end) for _ in range(conns)))
    latencies.sort()
    return {
        "rps": round(len(latencies) / seconds, 2),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2),
        "requests": len(latencies),
        "non_2xx": bad,
    }


if __name__ == "__main__":
    url, hdrs, secs, conns = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    body = sys.argv[5] if len(sys.argv) > 5 else None
    print(json.dumps(asyncio.run(load(url, hdrs, float(secs), int(conns), body))))
