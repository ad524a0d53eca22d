"""Run benchmarks and write their figures to a JSON file.

``python -m bench [area ...] [--out bench-results.json] [--quick]``. Each area is a
module ``bench/<area>.py`` with ``async def run(quick: bool) -> dict``; figures are
reported as ratios against a baseline measured in the same run, since machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import pkgutil
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench


def areas() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules(bench.__path__)
        if not m.name.startswith("_") and not m.ispkg  # packages (bench.scale) run on their own
    )


async def run_area(name: str, quick: bool) -> dict[str, Any]:
    module = importlib.import_module(f"bench.{name}")
    started = time.perf_counter()
    result: dict[str, Any] = await module.run(quick)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("areas", nargs="*", help=f"any of {areas()} (default: all)")
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    chosen = args.areas or areas()
    unknown = set(chosen) - set(areas())
    if unknown:
        sys.exit(f"unknown benchmark areas: {sorted(unknown)}; known: {areas()}")
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "quick": args.quick,
        "results": {},
    }
    failed = []
    for name in chosen:
        print(f"== {name}", flush=True)
        try:
            result = asyncio.run(run_area(name, args.quick))
        except Exception as exc:  # one area that cannot run must not cost the others
            failed.append(name)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        report["results"][name] = result
        print(json.dumps(result, indent=2), flush=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    if failed:
        sys.exit(f"these areas could not run: {', '.join(failed)} (see their 'error')")


if __name__ == "__main__":
    main()
