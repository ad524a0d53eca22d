"""Run the connector service: ``python -m services.connector``."""

from mesh.runtime import run, service_runtime
from services.connector import handlers, models
from services.connector.settings import ConnectorSettings


async def main() -> None:
    settings = ConnectorSettings()
    async with service_runtime("connector", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    run(main())
