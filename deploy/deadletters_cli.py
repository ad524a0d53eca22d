"""``partnermesh dead-letters list|show|replay``: what consumers could not handle for
good (mesh.deadletters), inspected and handed back to their consumer with the ops
credential."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _nats_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("PM_NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS server(s), comma-separated (default $PM_NATS_URL or nats://127.0.0.1:4222)",
    )
    parser.add_argument(
        "--seed",
        default=os.environ.get("PM_NATS_NKEY_SEED_FILE", ""),
        help="the ops credential's nkey seed file (default $PM_NATS_NKEY_SEED_FILE; "
        "`partnermesh up` keeps it in var/nats/creds/ops.nk)",
    )
    parser.add_argument(
        "--ca",
        default=os.environ.get("PM_NATS_TLS_CA_FILE", ""),
        help="CA of the servers' TLS certificates (default $PM_NATS_TLS_CA_FILE)",
    )


def commands(sub: Any) -> None:
    dl = sub.add_parser("dead-letters", help="list, inspect and replay dead letters")
    actions = dl.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the dead letters kept, oldest first")
    show = actions.add_parser("show", help="one dead letter: why, where from, the event")
    show.add_argument("seq", type=int, help="its sequence in PM_DEAD_LETTERS (from list)")
    replay = actions.add_parser(
        "replay", help="hand dead letters back to their consumer; delete those handled"
    )
    replay.add_argument("seq", type=int, nargs="*", help="sequences (none: every one listed)")
    replay.add_argument("--keep", action="store_true", help="keep them even when handled")
    for parser in (listing, replay):
        parser.add_argument("--process", default="*", help="only this process's")
        parser.add_argument("--consumer", default="*", help="only this consumer's (durable)")
    for parser in (listing, show, replay):
        _nats_option(parser)
        parser.add_argument("--json", action="store_true", help="JSON lines")


async def _said_below(exc: Exception) -> None:
    """nats-py's error callback: the command reports a failed connect itself."""


async def run(args: argparse.Namespace) -> int:
    """``partnermesh dead-letters list|show|replay``; the exit code."""
    import nats

    from contracts.bus import OPS, inbox_prefix
    from contracts.subjects import dead_letter_subject
    from mesh import deadletters
    from mesh.nats import BusAuth

    auth = BusAuth(args.seed, inbox_prefix(OPS), args.ca) if args.seed else None
    try:
        # A command, not a service: one try at each server, then say why.
        nc = await nats.connect(
            servers=args.nats_url.split(","),
            name="partnermesh-dead-letters",
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=5,
            error_cb=_said_below,
            **(auth or BusAuth()).options(),
        )
    except Exception as exc:  # refused (no or a wrong key), or nobody there
        print(
            f"partnermesh dead-letters: cannot connect to NATS at {args.nats_url} "
            f"({exc.__class__.__name__}: {exc}). A secured bus admits the ops key only: "
            "--seed var/nats/creds/ops.nk (partnermesh up), or $PM_NATS_NKEY_SEED_FILE",
            file=sys.stderr,
        )
        return 2
    js = nc.jetstream()
    try:
        if args.action == "show":
            letter = await deadletters.get(js, args.seq)
            if letter is None:
                print(f"no dead letter {args.seq}", file=sys.stderr)
                return 1
            _show(letter, args.json)
            return 0
        subject = None
        if (args.process, args.consumer) != ("*", "*"):
            subject = dead_letter_subject(args.process, args.consumer)
        if args.action == "list":
            async for letter in deadletters.listing(js, subject):
                _line(letter.summary(), args.json)
            return 0
        return await _replay(nc, js, args, subject)
    finally:
        await nc.close()


async def _replay(nc: Any, js: Any, args: argparse.Namespace, subject: str | None) -> int:
    from contracts.subjects import DEAD_LETTER_STREAM
    from mesh import deadletters

    if args.seq:
        found = [await deadletters.get(js, seq) for seq in args.seq]
        letters = [letter for letter in found if letter is not None]
        missing = len(found) - len(letters)
    else:
        letters = [letter async for letter in deadletters.listing(js, subject)]
        missing = 0
    failed = missing
    for letter in letters:
        try:
            reply = await deadletters.replay(nc, letter)
        except Exception as exc:  # nobody answers: the process is not running
            reply = {"outcome": "unanswered", "error": f"{exc.__class__.__name__}: {exc}"}
        handled = reply.get("outcome") in ("ok", "duplicate")
        if handled and not args.keep:
            await js.delete_msg(DEAD_LETTER_STREAM, letter.seq)
        failed += 0 if handled else 1
        _line({"seq": letter.seq, "consumer": letter.consumer, **reply}, args.json)
    return 1 if failed else 0


def _line(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(doc), flush=True)
        return
    print("  ".join(f"{k}={v}" for k, v in doc.items() if v not in ("", None)), flush=True)


def _show(letter: Any, as_json: bool) -> None:
    try:
        body: Any = json.loads(letter.data)
    except ValueError:
        body = letter.data.decode(errors="replace")
    if as_json:
        print(json.dumps({**letter.summary(), "headers": letter.headers, "event": body}))
        return
    for key, value in letter.summary().items():
        print(f"{key:>18}: {value}")
    print(json.dumps(body, indent=2) if not isinstance(body, str) else body)
