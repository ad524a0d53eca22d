"""The pushed authorization request endpoint's checks (RFC 9126 §2): the client
authenticates as at the token endpoint, and the request must be one the authorization
endpoint would accept from it."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError

from identity.domain.par import NOT_PUSHED
from identity.oauth.adapter import ClientView, StarletteRequest
from identity.oauth.authorization_server import IdentityServer
from identity.oauth.grants import AUTH_METHODS

ENDPOINT = "pushed_authorization_request"


def validate_pushed(
    server: IdentityServer, request: StarletteRequest
) -> tuple[ClientView, list[tuple[str, str]]]:
    """The authenticated client and the authorization request ``request`` pushes (its
    parameters, without client authentication); raises authlib's ``OAuth2Error``
    (``invalid_client``, ``invalid_request``, …) for anything the authorization endpoint
    would refuse."""
    client: ClientView = server.authenticate_client(request, AUTH_METHODS, ENDPOINT)
    data = request.payload.data
    if "request_uri" in data:
        raise InvalidRequestError("request_uri cannot be pushed (RFC 9126, section 2.1)")
    if "request" in data:
        raise InvalidRequestError("request objects are not supported")
    if data.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestError("client_id is not the authenticated client")
    params = [(k, v) for k, v in request.form.items() if k not in NOT_PUSHED | {"client_id"}]
    params.append(("client_id", client.client_id))
    as_authorize = StarletteRequest("GET", request.uri, request.headers, params, [])
    grant = server.get_authorization_grant(as_authorize)
    redirect_uri = grant.validate_authorization_request()
    if not redirect_uri:
        raise InvalidRequestError("redirect_uri is required")
    return client, params
