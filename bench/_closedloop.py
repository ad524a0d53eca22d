"""A closed-loop HTTP/1.1 load generator that tells admitted from refused requests.

``python -m bench._closedloop URL HEADERS_JSON SECONDS CONNECTIONS [--honour-retry-after]``
prints one JSON line. ``HEADERS_JSON`` is the headers of every request, or a list of
such (connection ``i`` sends the ``i % n``-th: one credential per client); ``-``: read
it from standard input. Each connection sends a GET, reads the whole reply, and sends the
next at once. A refused request (503) is sent again at once too (the worst case for the
server), or, with ``--honour-retry-after``, after the pause its ``Retry-After`` asks for
(up to twice that: jitter, so that clients refused together do not come back together).
Latency runs from the request's first byte written to the reply's last byte read, per
status: wrk reports one distribution for all statuses, and the figures that matter under
overload are those of the admitted (2xx) and of the refused (503) apart. Requests sent in
the first ``WARMUP_S`` (connections opening) are not counted. Raw asyncio streams on
keep-alive connections (uvloop when installed): a few tens of microseconds of client CPU
per request.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any
from urllib.parse import urlsplit

WARMUP_S = 0.5
WARMING = 0  # the "status" of replies to requests sent while warming up (not counted)


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


async def connection(
    host: str,
    port: int,
    request: bytes,
    end: float,
    counted_from: float,
    out: dict[int, list[float]],
    honour: bool,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    try:
        while (started := clock()) < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, pause = 0, 0.0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                elif honour and line[:12].lower() == b"retry-after:":
                    pause = float(line[12:])
            if length:
                await reader.readexactly(length)
            if started >= counted_from:
                out.setdefault(status, []).append(clock() - started)
            else:
                out.setdefault(WARMING, []).append(0.0)
            if b"connection: close" in head.lower():
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            if pause:  # with jitter, as clients should: refused together, back apart
                pause *= 1 + random.random()
                await asyncio.sleep(min(pause, max(0.0, end - clock())))
    finally:
        writer.close()


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) * 1e3, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1e3, 2),
        "max_ms": round((ordered[-1] if ordered else 0.0) * 1e3, 2),
    }


def requests_of(url: str, headers: dict[str, str] | list[dict[str, str]]) -> list[bytes]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    out = []
    for each in headers if isinstance(headers, list) else [headers]:
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{k}: {v}" for k, v in each.items()]
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return out


async def load(
    url: str,
    headers: dict[str, str] | list[dict[str, str]],
    seconds: float,
    conns: int,
    honour: bool = False,
) -> dict[str, Any]:
    parts = urlsplit(url)
    requests = requests_of(url, headers)
    by_status: dict[int, list[float]] = {}
    now = time.perf_counter()
    end, counted_from = now + WARMUP_S + seconds, now + WARMUP_S
    results = await asyncio.gather(
        *(
            connection(
                parts.hostname or "127.0.0.1",
                parts.port or 80,
                requests[i % len(requests)],
                end,
                counted_from,
                by_status,
                honour,
            )
            for i in range(conns)
        ),
        return_exceptions=True,
    )
    warming = len(by_status.pop(WARMING, []))
    admitted = [x for s, xs in by_status.items() if 200 <= s < 300 for x in xs]
    refused = by_status.get(503, [])
    total = sum(len(xs) for xs in by_status.values())
    return {
        "connections": conns,
        "rps": round(total / seconds, 1),
        "requests": total,
        "requests_with_warmup": total + warming,
        "admitted": summary(admitted),
        "refused": summary(refused),
        "refused_share": round(len(refused) / total, 4) if total else 0.0,
        "other_statuses": {
            str(s): len(xs) for s, xs in by_status.items() if s != 503 and not 200 <= s < 300
        },
        "connection_errors": sum(isinstance(r, BaseException) for r in results),
    }


def main() -> None:
    url, secs, conns = sys.argv[1], sys.argv[3], sys.argv[4]
    hdrs = json.loads(sys.stdin.read() if sys.argv[2] == "-" else sys.argv[2])
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    honour = "--honour-retry-after" in sys.argv[5:]
    print(json.dumps(runner(load(url, hdrs, float(secs), int(conns), honour))))


if __name__ == "__main__":
    main()
