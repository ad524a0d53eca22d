"""Run the collaboration service: ``python -m services.collaboration``."""

from mesh.runtime import run, service_runtime
from services.collaboration import handlers, models
from services.collaboration.settings import CollaborationSettings


async def main() -> None:
    settings = CollaborationSettings()
    async with service_runtime("collaboration", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    run(main())
