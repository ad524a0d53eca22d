"""The pushed authorization request endpoint (RFC 9126): ``POST {iss}/par``."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Request, Response

from identity.domain import par
from identity.http.oidc import oauth_request, to_response, unreadable_credentials
from identity.http.runtime import RuntimeDep, client_ip
from identity.oauth.par import validate_pushed
from identity.store.transaction import Tx

router = APIRouter()


@router.post("/eco/{eco}/par")
async def pushed_authorization_request(request: Request, eco: str, rt: RuntimeDep) -> Response:
    if not request.headers.get("authorization", "").isascii():
        return unreadable_credentials()
    oreq = await oauth_request(request, rt)

    def work(tx: Tx) -> tuple[int, Any, Any]:
        rt.enter(tx, eco, client_ip(request), cached=True)
        try:
            client, params = validate_pushed(rt.server, oreq)
        except OAuth2Error as err:
            err.redirect_uri, err.state = None, None  # answered here, never redirected
            return rt.server.handle_error_response(oreq, err)  # type: ignore[no-any-return]
        uri, ttl = par.push(tx, eco, client.client_id, params)
        return 201, {"request_uri": uri, "expires_in": ttl}, []

    return to_response(*await rt.tx(work))
