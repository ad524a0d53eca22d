"""Run the profile service: ``python -m services.profile``."""

from mesh.runtime import run, service_runtime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings


async def main() -> None:
    settings = ProfileSettings()
    async with service_runtime("profile", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    run(main())
