"""Run the matching service: ``python -m services.matching`` (``rebuild`` rebuilds the index,
``migrate`` migrates its database)."""

import sys

from mesh import migrate
from mesh.runtime import run, service_runtime
from services.matching import handlers, models
from services.matching.settings import MatchingSettings


async def main() -> None:
    settings = MatchingSettings()
    async with service_runtime("matching", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["rebuild"]:
        from services.matching.rebuild import main as rebuild

        sys.exit(rebuild(sys.argv[2:]))
    if sys.argv[1:2] == ["migrate"]:
        url = MatchingSettings().database_url_or_default("matching")
        sys.exit(migrate.main(models.history, url, sys.argv[2:]))
    run(main())
