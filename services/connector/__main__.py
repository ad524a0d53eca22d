"""Run the connector service: ``python -m services.connector``; ``migrate`` migrates its DB."""

import sys

from mesh import migrate
from mesh.runtime import run, service_runtime
from services.connector import handlers, models
from services.connector.settings import ConnectorSettings


async def main() -> None:
    settings = ConnectorSettings()
    async with service_runtime("connector", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["migrate"]:
        url = ConnectorSettings().database_url_or_default("connector")
        sys.exit(migrate.main(models.history, url, sys.argv[2:]))
    run(main())
