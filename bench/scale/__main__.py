"""``make bench-scale``: the pages people use at 1k, 10k and 100k people.

``python -m bench.scale [--sizes 1000,10000,100000] [--engines sqlite,postgresql]
[--samples 200] [--out bench-scale-results.json]``. PostgreSQL runs when
``PM_BENCH_POSTGRES_URL`` (an admin URL; databases are created beside it) is set.
Each size's ecosystem is generated once and cached (``bench.scale.load``). The JSON
follows ``python -m bench``: figures per size, and ratios (p95 at the largest size
÷ p95 at the smallest) per call, so the growth of cost with size reads at a glance.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scale.load import ensure
from bench.scale.measure import run_size
from bench.scale.memory import idle_rss
from bench.scale.shape import Shape


def ratios(per_size: dict[str, Any]) -> dict[str, float]:
    sizes = sorted(per_size, key=int)
    small, large = per_size[sizes[0]]["calls"], per_size[sizes[-1]]["calls"]
    return {
        f"{call}_p95_{sizes[-1]}_vs_{sizes[0]}": round(
            large[call]["p95_ms"] / max(small[call]["p95_ms"], 1e-3), 2
        )
        for call in large
    }


async def engine_run(engine: str, sizes: list[int], samples: int) -> dict[str, Any]:
    admin = os.environ.get("PM_BENCH_POSTGRES_URL") if engine == "postgresql" else None
    per_size: dict[str, Any] = {}
    for people in sizes:
        shape = Shape(people)
        print(f"== {engine} {people} people: loading", flush=True)
        started = time.perf_counter()
        loaded = await ensure(shape, admin)
        load_s = round(time.perf_counter() - started, 1)
        print(f"   loaded in {load_s}s; measuring", flush=True)
        result = await run_size(shape, loaded["urls"], samples)  # type: ignore[arg-type]
        result["load"] = loaded["load"]
        result["load_s"] = load_s
        result["shape"] = {
            "people": shape.people,
            "companies": shape.companies,
            "posts": shape.posts,
            "introductions": shape.introductions,
            "threads": shape.threads,
            "long_thread_posts": shape.long_thread_posts,
        }
        per_size[str(people)] = result
        print(json.dumps(result["calls"]), flush=True)
    return {"sizes": per_size, "ratios": ratios(per_size) if len(per_size) > 1 else {}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--no-memory", action="store_true", help="skip the idle RSS figures")
    parser.add_argument("--out", default="bench-scale-results.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = [e for e in args.engines.split(",") if e]
    if "postgresql" in engines and not os.environ.get("PM_BENCH_POSTGRES_URL"):
        print("PM_BENCH_POSTGRES_URL is not set: PostgreSQL skipped", flush=True)
        engines.remove("postgresql")
    started = time.perf_counter()
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": {},
    }
    for engine in engines:
        report["results"][engine] = asyncio.run(engine_run(engine, sizes, args.samples))
    if not args.no_memory:
        report["results"]["idle_rss_mib"] = asyncio.run(idle_rss())
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["results"].get("idle_rss_mib"), indent=2))
    print(f"wrote {args.out} in {report['elapsed_s']}s")


if __name__ == "__main__":
    main()
