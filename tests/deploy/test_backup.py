"""`partnermesh backup` / `restore` parts on real NATS servers and SQLite files (the
PostgreSQL path runs end to end in tests/faults/test_backup_restore.py)."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import nats
import pytest

from contracts.subjects import EVENT_STREAM
from deploy.backup import (
    BackupError,
    dump_database,
    export_streams,
    import_streams,
    parse_databases,
    restore_database,
)
from mesh.localnats import local_nats
from mesh.nats import ensure_event_stream


async def stream_messages(url: str) -> list[tuple[str, bytes, str]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(EVENT_STREAM)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(EVENT_STREAM, seq)
            assert msg.subject is not None and msg.data is not None
            out.append((msg.subject, msg.data, (msg.headers or {}).get("Nats-Msg-Id", "")))
        return out
    finally:
        await nc.close()


class TestStreams:
    async def test_a_stream_comes_back_with_its_messages_ids_and_config(
        self, nats_url: str, tmp_path: Path
    ) -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_event_stream(js)
        for i in range(5):
            await js.publish(
                f"pm.v1.evt.acme.collaboration.content_created.{i}",
                json.dumps({"n": i}).encode(),
                headers={"Nats-Msg-Id": f"evt-{i}", "traceparent": f"00-{i:032x}-{i:016x}-01"},
            )
        await nc.close()
        dump = tmp_path / "streams.jsonl"
        counts = await export_streams(nats_url, dump)
        assert counts[EVENT_STREAM] >= 5
        with local_nats() as fresh:
            assert await import_streams(fresh, dump) == counts
            exported = [json.loads(line) for line in dump.read_text().splitlines()]
            assert await stream_messages(fresh) == [
                (m["subject"], base64.b64decode(m["data"]), m["headers"].get("Nats-Msg-Id", ""))
                for m in exported
                if m["stream"] == EVENT_STREAM and "subject" in m
            ]
            assert [m for m in await stream_messages(fresh) if m[2].startswith("evt-")] == [
                (
                    f"pm.v1.evt.acme.collaboration.content_created.{i}",
                    json.dumps({"n": i}).encode(),
                    f"evt-{i}",
                )
                for i in range(5)
            ]
            nc = await nats.connect(fresh)
            info = await nc.jetstream().stream_info(EVENT_STREAM)
            await nc.close()
            assert info.config.duplicate_window == 600.0
            # A second import would duplicate the history: refused.
            with pytest.raises(BackupError, match="not empty"):
                await import_streams(fresh, dump)


class TestDatabases:
    def test_sqlite_round_trip_and_no_restore_over_data(self, tmp_path: Path) -> None:
        source = tmp_path / "profile.db"
        with sqlite3.connect(source) as db:
            db.execute("CREATE TABLE person (id TEXT PRIMARY KEY, name TEXT)")
            db.execute("INSERT INTO person VALUES ('p1', 'Nadia')")
        out = tmp_path / "backup"
        out.mkdir()
        dumped = dump_database(f"sqlite+aiosqlite:///{source}", out, "profile")
        target = tmp_path / "restored" / "profile.db"
        restore_database(dumped, f"sqlite+aiosqlite:///{target}")
        with sqlite3.connect(target) as db:
            assert db.execute("SELECT id, name FROM person").fetchall() == [("p1", "Nadia")]
        with pytest.raises(BackupError, match="exists"):
            restore_database(dumped, f"sqlite+aiosqlite:///{target}")

    def test_db_arguments_name_each_database(self) -> None:
        assert parse_databases(["profile=postgresql://h/p"]) == {"profile": "postgresql://h/p"}
        with pytest.raises(BackupError):
            parse_databases(["postgresql://h/p"])
