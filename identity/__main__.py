"""``python -m identity`` serves the provider; ``migrate``, ``seed-demo``, ``rotate-keys``,
``set-access-token-alg`` and ``create-ecosystem`` manage it."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path

from identity.settings import IdentitySettings
from identity.store import models
from mesh import migrate
from mesh.db import Database
from mesh.defaults import process_logging
from mesh.migrate_apart import prepare_apart


def main() -> None:
    if sys.argv[1:2] == ["migrate"]:  # before logging and the other commands' parser
        url = IdentitySettings().database_url_or_default()
        sys.exit(migrate.main(models.history, url, sys.argv[2:]))
    parser = argparse.ArgumentParser(prog="python -m identity")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("migrate", help="apply pending schema migrations (--status, --to REV)")
    seed = sub.add_parser("seed-demo", help="create the demo ecosystem and write its credentials")
    seed.add_argument("--out", default="var/demo-identity.json")
    seed.add_argument(
        "--portal-url",
        default=None,
        help="where the demo portal runs (its client's redirect URIs; default :8082)",
    )
    rotate = sub.add_parser("rotate-keys", help="rotate an ecosystem's signing keys")
    rotate.add_argument("--eco", required=True)
    alg = sub.add_parser("set-access-token-alg", help="sign an ecosystem's access tokens with")
    alg.add_argument("--eco", required=True)
    alg.add_argument("--alg", required=True, help="ES256 (default) or RS256")
    create = sub.add_parser("create-ecosystem", help="bootstrap a new ecosystem and its operator")
    create.add_argument("--eco", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--partner", required=True, help="slug of the operator's organisation")
    create.add_argument("--partner-name", required=True)
    create.add_argument("--operator", required=True, help="the operator's username")
    args = parser.parse_args()
    settings = IdentitySettings()
    process_logging("identity", settings)
    if args.command is None:
        serve(settings)
        return
    # the commands load here, not at import: the server and its migrate child start lighter
    from identity.cli import commands

    if args.command == "seed-demo":
        doc = asyncio.run(commands.seed_demo(settings, Path(args.out), portal_url=args.portal_url))
        print(f"demo ecosystem {doc['eco']} ready; credentials in {args.out}")
    elif args.command == "rotate-keys":
        try:
            print(json.dumps(asyncio.run(commands.rotate_keys(settings, args.eco))))
        except commands.CliError as exc:
            sys.exit(str(exc))
    elif args.command == "set-access-token-alg":
        try:
            print(
                json.dumps(asyncio.run(commands.set_access_token_alg(settings, args.eco, args.alg)))
            )
        except commands.CliError as exc:
            sys.exit(str(exc))
    elif args.command == "create-ecosystem":
        password = os.environ.get("PM_IDENTITY_OPERATOR_PASSWORD") or getpass.getpass(
            "operator password: "
        )
        try:
            result = asyncio.run(
                commands.create_ecosystem(
                    settings,
                    args.eco,
                    args.name,
                    (args.partner, args.partner_name),
                    args.operator,
                    password,
                )
            )
        except commands.CliError as exc:
            sys.exit(str(exc))
        print(json.dumps(result))


def serve(settings: IdentitySettings) -> None:
    """The provider under uvicorn; its schema is applied or checked by ``python -m identity
    migrate`` in a child process, so alembic never loads into the server (about 10 MiB)."""
    import uvicorn

    from identity.http.app import create_app

    env = {**os.environ, "PM_IDENTITY_DATABASE_URL": settings.database_url_or_default()}
    argv = [sys.executable, "-m", "identity", "migrate"]

    async def prepare(_db: Database, apply: bool) -> object:
        return await prepare_apart("identity", apply, argv, env)

    uvicorn.run(
        create_app(settings, prepare),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,  # no "server: uvicorn" on every response
        proxy_headers=False,  # forwarded headers only from trusted_proxies (app middleware)
        ws="none",  # identity serves no WebSocket: the websockets package stays unloaded
    )


if __name__ == "__main__":
    main()
