"""The ``partnermesh`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy import backup


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="partnermesh", description="Run a partnermesh locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    backup.add_commands(sub)

    up = sub.add_parser("up", help="start the whole mesh with a seeded demo ecosystem")
    up.add_argument("--var", default="var", type=Path, help="state directory (default ./var)")
    up.add_argument("--port-offset", type=int, default=0, help="add N to every port")
    up.add_argument("--no-seed", action="store_true", help="skip demo content (identities stay)")
    args = parser.parse_args(argv)
    if args.command in ("backup", "restore"):
        sys.exit(backup.run_command(args))
    if args.command == "up":
        from deploy.launcher import up as run_up

        sys.exit(run_up(args.var, args.port_offset, seed=not args.no_seed))


if __name__ == "__main__":
    main()
