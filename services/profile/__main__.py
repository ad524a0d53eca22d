"""Run the profile service: ``python -m services.profile``."""

import asyncio

from mesh.runtime import service_runtime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings


async def main() -> None:
    settings = ProfileSettings()
    async with service_runtime("profile", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
