"""Back up and restore a deployment: every process's database and the JetStream streams.

``partnermesh backup --out DIR --nats URL --db identity=URL --db profile=URL …`` writes

- ``<name>.dump``: ``pg_dump --format=custom`` of each PostgreSQL database (a SQLite
  database is copied with SQLite's online backup into ``<name>.sqlite``);
- ``streams.jsonl``: each partnermesh stream (``PM_*``): its configuration, then every
  message with its subject, headers (``Nats-Msg-Id`` is the event id) and data;
- ``manifest.json``: what was written, and when.

Order matters. The databases are dumped first and the streams last: every event that
a dumped outbox marks as published is then in the stream dump, and a consumer's inbox
never claims more than the stream holds, so nothing falls between the two.

``partnermesh restore --from DIR --nats URL --db NAME=URL …`` goes the other way into
empty databases and a NATS cluster without the streams, before any process starts:
streams first (recreated with their configuration, messages published again under
their ``Nats-Msg-Id``), then the databases. When the processes start, every durable
consumer reads the stream from the start, and its inbox (restored with its database)
skips what it had handled: events that were in flight at backup time are handled
now, none twice.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import sqlite3
import ssl
import subprocess
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy.engine import make_url

STREAM_PREFIX = "PM_"
STREAMS_FILE = "streams.jsonl"
MANIFEST = "manifest.json"
# Headers the server sets or checks on publish; everything else travels with the message.
_SERVER_HEADERS = ("Nats-Expected-", "Nats-Rollup", "Nats-TTL")


class BackupError(Exception):
    """Printed without a traceback by the command."""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise BackupError(f"{url}: no SQLite file")
    return Path(database)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {done.stderr.strip() or done.stdout.strip()}")


# -- databases --------------------------------------------------------------------------


def dump_database(url: str, out: Path, name: str) -> Path:
    """One process's database into ``out``; returns the file written."""
    if url.startswith("sqlite"):
        target = out / f"{name}.sqlite"
        with sqlite3.connect(_sqlite_path(url)) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return target
    target = out / f"{name}.dump"
    _run(
        [
            "pg_dump",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--file",
            str(target),
            _libpq(url),
        ]
    )
    return target


def restore_database(source: Path, url: str) -> None:
    """Load a dump into an empty database (PostgreSQL) or file (SQLite)."""
    if url.startswith("sqlite"):
        target = _sqlite_path(url)
        if target.exists() and target.stat().st_size:
            raise BackupError(f"{target} exists: restore into a new file")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return
    _run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            _libpq(url),
            str(source),
        ]
    )


# -- streams ----------------------------------------------------------------------------


async def export_streams(nats_url: str, target: Path, **connect: Any) -> dict[str, int]:
    """Every ``PM_*`` stream's configuration and messages into ``target`` (JSON lines);
    returns the message count per stream."""
    nc = await nats.connect(servers=nats_url.split(","), **connect)
    counts: dict[str, int] = {}
    try:
        js = nc.jetstream(timeout=10.0)
        with target.open("w") as out:
            for info in await js.streams_info():
                name = info.config.name or ""
                if not name.startswith(STREAM_PREFIX):
                    continue
                out.write(json.dumps({"stream": name, "config": info.config.as_dict()}) + "\n")
                counts[name] = 0
                if not info.state.messages:  # empty: first_seq may be 0, no sequence to get
                    continue
                for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
                    try:
                        msg = await js.get_msg(name, seq)
                    except NotFoundError:  # deleted or expired
                        continue
                    line = {
                        "stream": name,
                        "seq": seq,
                        "subject": msg.subject,
                        "headers": dict(msg.headers or {}),
                        "data": base64.b64encode(msg.data or b"").decode(),
                    }
                    out.write(json.dumps(line) + "\n")
                    counts[name] += 1
    finally:
        await nc.close()
    return counts


def _lines(source: Path) -> Iterator[dict[str, Any]]:
    with source.open() as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


async def import_streams(
    nats_url: str, source: Path, replicas: int | None = None, **connect: Any
) -> dict[str, int]:
    """Recreate the streams of an export and publish their messages again, in order.

    ``replicas`` overrides each stream's replica count (restoring into a cluster of
    another size). A stream that already holds messages is refused.
    """
    nc = await nats.connect(servers=nats_url.split(","), **connect)
    counts: dict[str, int] = {}
    try:
        js = nc.jetstream(timeout=10.0)
        for item in _lines(source):
            name = item["stream"]
            if "config" in item:
                config = StreamConfig.from_response(dict(item["config"]))
                if replicas is not None:
                    config.num_replicas = replicas
                try:
                    existing = await js.stream_info(name)
                except NotFoundError:
                    await js.add_stream(config)
                else:
                    if existing.state.messages:
                        raise BackupError(f"stream {name} is not empty: restore into a new one")
                counts[name] = 0
                continue
            headers = {
                k: v for k, v in item["headers"].items() if not k.startswith(_SERVER_HEADERS)
            }
            await js.publish(
                item["subject"], base64.b64decode(item["data"]), stream=name, headers=headers
            )
            counts[name] += 1
    finally:
        await nc.close()
    return counts


# -- the whole deployment -------------------------------------------------------------------


async def backup(
    out: Path, nats_url: str, databases: Mapping[str, str], **connect: Any
) -> dict[str, Any]:
    """Databases first, then the streams (see the module's docstring for why)."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    started = datetime.now(UTC)
    files = {
        name: (await asyncio.to_thread(dump_database, url, out, name)).name
        for name, url in databases.items()
    }
    streams = await export_streams(nats_url, out / STREAMS_FILE, **connect)
    manifest = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "databases": files,
        "streams": {"file": STREAMS_FILE, "messages": streams},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


async def restore(
    source: Path,
    nats_url: str,
    databases: Mapping[str, str],
    replicas: int | None = None,
    **connect: Any,
) -> dict[str, Any]:
    """Streams first, then every database named in the manifest; before processes start."""
    manifest = json.loads((source / MANIFEST).read_text())
    missing = set(manifest["databases"]) - set(databases)
    if missing:
        raise BackupError(f"no target database for: {', '.join(sorted(missing))}")
    streams = await import_streams(
        nats_url, source / manifest["streams"]["file"], replicas, **connect
    )
    for name, file in manifest["databases"].items():
        await asyncio.to_thread(restore_database, source / file, databases[name])
    return {"streams": streams, "databases": sorted(manifest["databases"])}


def parse_databases(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url:
            raise BackupError(f"--db takes NAME=URL, not {pair!r}")
        out[name] = url
    return out


def add_commands(sub: Any) -> None:
    """``partnermesh backup`` and ``partnermesh restore``."""
    for command, helptext in (
        ("backup", "dump every database, then the event streams, into a directory"),
        ("restore", "load a backup into empty databases and a NATS without the streams"),
    ):
        p: argparse.ArgumentParser = sub.add_parser(command, help=helptext)
        if command == "backup":
            p.add_argument("--out", required=True, type=Path, help="directory to write")
        else:
            p.add_argument("--from", dest="source", required=True, type=Path)
            p.add_argument("--replicas", type=int, help="replicas of each restored stream")
        p.add_argument("--nats", required=True, help="NATS URL(s), comma-separated")
        p.add_argument("--nkey-seed", help="nkey seed file of a credential that may manage streams")
        p.add_argument("--tls-ca", help="CA of the NATS servers' TLS certificates")
        p.add_argument(
            "--db",
            action="append",
            default=[],
            metavar="NAME=URL",
            help="a process's database (identity, profile, …); repeat for each",
        )


def connect_options(nkey_seed: str | None, tls_ca: str | None) -> dict[str, Any]:
    """``nats.connect`` keyword arguments for a credential and a CA (both optional)."""
    options: dict[str, Any] = {}
    if nkey_seed:
        options["nkeys_seed"] = nkey_seed
    if tls_ca:
        options["tls"] = ssl.create_default_context(cafile=tls_ca)
    return options


def run_command(args: argparse.Namespace) -> int:
    try:
        databases = parse_databases(args.db)
        auth = connect_options(args.nkey_seed, args.tls_ca)
        if args.command == "backup":
            result = asyncio.run(backup(args.out, args.nats, databases, **auth))
        else:
            result = asyncio.run(restore(args.source, args.nats, databases, args.replicas, **auth))
    except BackupError as exc:
        print(f"partnermesh {args.command}: {exc}", flush=True)
        return 1
    print(json.dumps(result, indent=2))
    return 0
