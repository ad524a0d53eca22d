"""``python -m identity`` serves the provider; ``seed-demo`` and ``rotate-keys`` manage it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import uvicorn

from identity import cli
from identity.app import create_app
from identity.settings import IdentitySettings
from mesh import logging as mesh_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m identity")
    sub = parser.add_subparsers(dest="command")
    seed = sub.add_parser("seed-demo", help="create the demo ecosystem and write its credentials")
    seed.add_argument("--out", default="var/demo-identity.json")
    rotate = sub.add_parser("rotate-keys", help="rotate an ecosystem's signing keys")
    rotate.add_argument("--eco", required=True)
    args = parser.parse_args()
    settings = IdentitySettings()
    mesh_logging.setup(f"identity-{settings.instance}", settings.log_level, settings.log_json)
    if args.command == "seed-demo":
        doc = asyncio.run(cli.seed_demo(settings, Path(args.out)))
        print(f"demo ecosystem {doc['eco']} ready; credentials in {args.out}")
    elif args.command == "rotate-keys":
        try:
            print(json.dumps(asyncio.run(cli.rotate_keys(settings, args.eco))))
        except cli.CliError as exc:
            sys.exit(str(exc))
    else:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    log_config=None, access_log=False)


if __name__ == "__main__":
    main()
