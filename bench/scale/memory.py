"""Idle resident memory of every process, started as ``partnermesh up`` starts them.

The launcher runs in a throwaway state directory (``--no-seed``: no demo back-ends),
on its own ports (``PM_BENCH_PORT_OFFSET``, default 170). Once it says the mesh is up,
the mesh idles a few seconds, then each child's ``VmRSS`` is read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path

from bench.scale.measure import rss_mib

PROCESSES = (
    "identity",
    "gateway",
    "portal",
    "services.profile",
    "services.matching",
    "services.collaboration",
    "services.connector",
)
LIMIT_MIB = 120.0


def children(pid: int) -> dict[str, int]:
    """{module run with ``-m``: pid} of ``pid``'s child processes."""
    out: dict[str, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
            if ppid == pid and "-m" in argv:
                out[argv[argv.index("-m") + 1]] = int(entry.name)
    return out


async def idle_rss(idle_s: float = 5.0, within: float = 180.0) -> dict[str, object]:
    offset = os.environ.get("PM_BENCH_PORT_OFFSET", "170")
    with tempfile.TemporaryDirectory(prefix="pm-bench-rss-") as var:
        argv = ["-m", "deploy", "up", "--var", var, "--port-offset", offset, "--no-seed"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(within):
                while b"partnermesh is up" not in await proc.stdout.readline():
                    if proc.returncode is not None:
                        raise RuntimeError("partnermesh up stopped before the mesh was up")
            drain = asyncio.create_task(proc.stdout.read())
            await asyncio.sleep(idle_s)
            rss = {
                name.removeprefix("services."): rss_mib(pid)
                for name, pid in children(proc.pid).items()
                if name in PROCESSES
            }
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        drain.cancel()
    over = sorted(n for n, mib in rss.items() if mib > LIMIT_MIB and n != "matching")
    return {"per_process": rss, "limit_mib": LIMIT_MIB, "over_limit": over, "idle_s": idle_s}
