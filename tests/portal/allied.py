"""A second ecosystem in the portal tests' mesh, with its own portal: the other side of an
alliance with ``acme``. Its brand is written like hostile input on purpose (markup and
an ampersand), so every page that shows it proves it escapes it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from identity.cli import commands, seed
from identity.domain import directory
from identity.domain.crypto import Sealer
from identity.settings import IdentitySettings
from identity.store import repository as repo
from identity.store.transaction import Tx
from portal.app import create_app as create_portal
from portal.settings import PortalSettings
from tests.portal.mesh import CLIENT, Mesh
from tests.support import infra

ALLY = "globex"
ALLY_NAME = 'Globex <b>"Allies"</b> & Co'
PARTNER, PARTNER_NAME = "globex-hq", "Globex Holdings"
PEOPLE = {  # username: (name, roles)
    "gina": ("Gina Gold", ["operator", "partner_admin", "member"]),
    "gus": ("Gus Grant", ["member"]),
}


def _seed(portal_url: str, hashes: dict[str, str], sealer: Sealer) -> Any:
    spec = dict(seed.CLIENTS["portal"])
    spec.update(
        partner=PARTNER,
        redirect_uris=[f"{portal_url}/auth/callback"],
        post_logout_redirect_uris=[f"{portal_url}/"],
        backchannel_logout_uri=f"{portal_url}/auth/backchannel-logout",
    )

    def work(tx: Tx) -> str:
        if repo.get_ecosystem(tx.s, ALLY) is None:
            directory.create_ecosystem(tx, ALLY, ALLY_NAME, sealer, actor="test")
            directory.create_partner(tx, ALLY, PARTNER, PARTNER_NAME, verified=True, actor="test")
            for username, (name, roles) in PEOPLE.items():
                email = f"{username}@{PARTNER}.example"
                directory.create_person(
                    tx, ALLY, username, PARTNER, name, roles, hashes["olivia"], email, actor="t"
                )
        _row, secret = directory.create_client(tx, ALLY, CLIENT, actor="test", **spec)
        return str(secret)

    return work


@contextlib.asynccontextmanager
async def allied_portal(mesh: Mesh, hashes: dict[str, str]) -> AsyncIterator[Mesh]:
    """The ecosystem ``globex`` in the mesh's identity, and a portal of its own; yields a
    :class:`Mesh` whose ``portal_url`` is that portal (sign in there as gina or gus)."""
    assert mesh.workdir is not None
    port = infra.free_port()
    url = f"http://127.0.0.1:{port}"
    settings = IdentitySettings(database_url=mesh.database_urls["identity"], environment="test")
    secret = await commands._with_db(
        settings, _seed(url, hashes, Sealer(settings.key_encryption_secret))
    )
    creds = mesh.workdir / f"portal-client-{ALLY}.json"
    client = {"client_id": CLIENT, "client_secret": secret}
    creds.write_text(json.dumps({"clients": {CLIENT: client}}))
    portal = PortalSettings(
        port=port,
        public_url=url,
        gateway_url=mesh.gateway_url,
        identity_url=mesh.identity_url,
        client_id=CLIENT,
        eco=ALLY,
        environment="test",
        credentials_file=str(creds),
        database_url=f"sqlite+aiosqlite:///{mesh.workdir / f'portal-{ALLY}.db'}",
    )
    app = create_portal(portal)
    async with infra.serve_app(app, port):
        yield dataclasses.replace(mesh, portal_url=url, portal_app=app)
