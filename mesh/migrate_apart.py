"""A process's schema made ready by a child process (see :func:`prepare_apart`).

:func:`mesh.migrate.prepare` reads the revisions with alembic, which loads alembic and
mako (about 10 MiB) into the process for good. A long-running process that only needs
its schema applied or checked before it serves can leave that to a child: its own
``migrate`` command (``python -m <process> migrate [--status]``), whose last line of
output is the JSON status (:meth:`mesh.migrate.Status.as_dict`). One interpreter start
is the price; the answer and the waiting are :func:`mesh.migrate.prepare`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from mesh.migrate import SchemaBehind, State, Status

log = logging.getLogger(__name__)


def status_of(doc: dict[str, Any]) -> Status:
    """A :class:`Status` from its JSON form."""
    return Status(
        str(doc["process"]),
        State(doc["state"]),
        tuple(doc["current"]),
        tuple(doc["head"]),
        bool(doc["adopted"]),
        tuple(doc["applied"]),
    )


async def run_child(argv: list[str], env: dict[str, str]) -> Status:
    """Run the ``migrate`` command ``argv`` with ``env``; its status."""
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        doc = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = err.decode(errors="replace")[-500:]
        raise RuntimeError(f"{argv!r} exited {proc.returncode} without a status: {tail}") from None
    return status_of(doc)


async def prepare_apart(
    name: str,
    apply: bool,
    argv: list[str],
    env: dict[str, str],
    wait: bool = True,
    retry_s: float = 2.0,
) -> Status:
    """:func:`mesh.migrate.prepare` by the child ``argv`` (``--status`` added unless
    ``apply``), whose ``env`` names the database: apply pending revisions (the state
    afterwards), or check and go on when current or ahead; behind or unversioned waits
    (retrying every ``retry_s``) when ``wait``, else raises
    :class:`mesh.migrate.SchemaBehind`."""
    while True:
        st = await run_child([*argv, *([] if apply else ["--status"])], env)
        if st.applied or st.adopted:
            log.info("migrated", extra={"migration": st.as_dict()})
        if apply or st.state in (State.CURRENT, State.AHEAD):
            return st
        message = (
            f"the {name} database is {st.state.value} (at {list(st.current)}, "
            f"this code needs {list(st.head)}): run `partnermesh migrate {name}`"
        )
        if not wait:
            raise SchemaBehind(message)
        log.warning(message + "; waiting", extra={"migration": st.as_dict()})
        await asyncio.sleep(retry_s)
