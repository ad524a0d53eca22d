"""Run the portal: ``python -m portal`` (``migrate`` migrates its database)."""

import sys

import uvicorn

from mesh import migrate
from mesh.defaults import process_logging
from portal import models
from portal.app import create_app
from portal.settings import PortalSettings


def main() -> None:
    settings = PortalSettings()
    if sys.argv[1:2] == ["migrate"]:
        sys.exit(migrate.main(models.history, settings.database_url_or_default(), sys.argv[2:]))
    process_logging("portal", settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # Relayed notification streams never finish on their own: a stopping portal cuts
        # them after this grace, and the browsers reconnect (to another replica).
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
