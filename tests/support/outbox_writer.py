"""A process that commits a state change and its event, then hangs before any relay runs.

``python -m tests.support.outbox_writer DATABASE_URL ECO`` prints ``committed <event id>``
and sleeps, so a test can kill -9 it between commit and publish.
"""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from contracts.v1.identity import AuditData, AuditEvent
from mesh.db import Database
from mesh.outbox import Outbox

metadata = MetaData()
widgets = Table(
    "widgets", metadata, Column("id", Integer, primary_key=True), Column("name", String(50))
)
outbox = Outbox(metadata)


async def write(url: str, eco: str) -> str:
    db = Database(url, metadata)
    await db.create_all()
    event = AuditEvent(ecosystem=eco, data=AuditData(action="widget.created", target="w1"))
    async with db.transaction() as session:
        await session.execute(insert(widgets).values(name="w1"))
        await outbox.add(session, event)
    return event.id


def main() -> None:
    url, eco = sys.argv[1], sys.argv[2]
    loop = asyncio.new_event_loop()
    event_id = loop.run_until_complete(write(url, eco))
    print(f"committed {event_id}", flush=True)
    loop.run_until_complete(asyncio.sleep(3600))


if __name__ == "__main__":
    main()
