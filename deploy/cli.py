"""The ``partnermesh`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _nats_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from deploy.bus import TARGETS

    nats = sub.add_parser("nats", help="the bus: credentials, server configuration, streams")
    verbs = nats.add_subparsers(dest="verb", required=True)
    render = verbs.add_parser("render", help="server config + per-process credentials + TLS")
    render.add_argument("target", choices=TARGETS)
    render.add_argument("--out", type=Path, help="default deploy/nats/<target> (single: var/nats)")
    for verb, text in (
        ("rotate", "a new key for PROCESS; the old one stays admitted until retired"),
        ("retire", "stop admitting the key PROCESS had before its rotation"),
    ):
        p = verbs.add_parser(verb, help=text + " (then reload the servers: SIGHUP)")
        p.add_argument("process")
        p.add_argument("target", choices=TARGETS)
        p.add_argument("--out", type=Path)
    table = verbs.add_parser("table", help="print every process's grants (contracts/bus.py)")
    table.add_argument("--full", action="store_true", help="every operation subject too")
    streams = verbs.add_parser("streams", help="create the streams (admin credential)")
    streams.add_argument("--url", required=True)
    streams.add_argument("--seed", type=Path, required=True, help="the admin's nkey seed file")
    streams.add_argument("--ca", default="", help="CA of the servers' TLS certificates")
    streams.add_argument("--replicas", type=int, default=1)


def _out(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return Path(args.out)
    return Path("var/nats") if args.target == "single" else Path("deploy/nats") / args.target


def nats_command(args: argparse.Namespace) -> int:
    from deploy import bus

    if args.verb == "table":
        from deploy.natsconf import permission_table

        print(permission_table(args.full), end="")
        return 0
    if args.verb == "streams":
        print(" ".join(bus.streams(args.url, args.seed, args.ca, args.replicas)))
        return 0
    out = _out(args)
    if args.verb in ("rotate", "retire"):
        from deploy.natskeys import Keyring

        keyring = Keyring(out / "creds")
        if args.verb == "rotate":
            print(f"{args.process}: new key {keyring.rotate(args.process)}")
        else:
            keyring.retire(args.process)
    for path in bus.render(args.target, out, static=args.verb == "render"):
        print(f"wrote {path}")
    if args.verb != "render":
        print("now reload the servers: nats-server --signal reload (or SIGHUP)")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="partnermesh", description="Run a partnermesh locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole mesh with a seeded demo ecosystem")
    up.add_argument("--var", default="var", type=Path, help="state directory (default ./var)")
    up.add_argument("--port-offset", type=int, default=0, help="add N to every port")
    up.add_argument("--no-seed", action="store_true", help="skip demo content (identities stay)")
    _nats_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "up":
        from deploy.launcher import up as run_up

        sys.exit(run_up(args.var, args.port_offset, seed=not args.no_seed))
    if args.command == "nats":
        sys.exit(nats_command(args))


if __name__ == "__main__":
    main()
