"""Run the collaboration service: ``python -m services.collaboration``;
``migrate`` migrates its database."""

import sys

from mesh import migrate
from mesh.runtime import run, service_runtime
from services.collaboration import handlers, models
from services.collaboration.settings import CollaborationSettings


async def main() -> None:
    settings = CollaborationSettings()
    async with service_runtime("collaboration", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["migrate"]:
        url = CollaborationSettings().database_url_or_default("collaboration")
        sys.exit(migrate.main(models.history, url, sys.argv[2:]))
    run(main())
