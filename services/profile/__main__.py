"""Run the profile service: ``python -m services.profile`` (``migrate`` migrates its database)."""

import sys

from mesh import migrate
from mesh.runtime import run, service_runtime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings


async def main() -> None:
    settings = ProfileSettings()
    async with service_runtime("profile", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["migrate"]:
        url = ProfileSettings().database_url_or_default("profile")
        sys.exit(migrate.main(models.history, url, sys.argv[2:]))
    run(main())
