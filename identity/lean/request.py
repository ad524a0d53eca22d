"""Reading a token request as the lean path does: the ecosystem of the path, the one
``Authorization`` header of a plain form post, the body (bounded), the form's
``grant_type`` and ``scope``, and HTTP Basic credentials as authlib reads them. Anything
odd reads as None: the request goes, body intact (:func:`replay`), to the full path."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from authlib.common.urls import unquote
from starlette.types import Message, Receive, Scope

from identity.domain.crypto import digest
from identity.domain.tokens import KNOWN_SCOPES

MAX_BODY = 2048  # a client-credentials form is a few dozen bytes; anything bigger goes on
FORM = b"application/x-www-form-urlencoded"


def eco_of(scope: Scope) -> str | None:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return eco_of_path(path)


def eco_of_path(path: str) -> str | None:
    """``eco`` of ``/eco/{eco}/token``; else None."""
    parts = path.split("/")
    if (
        len(parts) == 4
        and parts[0] == ""
        and parts[1] == "eco"
        and parts[2]
        and parts[3] == "token"
    ):
        return parts[2]
    return None


_FORMS: dict[bytes, dict[str, str] | None] = {}


def form_of(body: bytes) -> dict[str, str] | None:
    """``grant_type`` and optional ``scope``, each once, plain ASCII; else None.

    A client sends the same few bodies over and over: each is parsed once (bounded memo;
    the parsed form is only read, never changed)."""
    try:
        return _FORMS[body]
    except KeyError:
        pass
    form = _parse_form(body)
    if len(_FORMS) >= 256:
        _FORMS.clear()
    _FORMS[body] = form
    return form


def _parse_form(body: bytes) -> dict[str, str] | None:
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    if ";" in text:
        return None
    out: dict[str, str] = {}
    for pair in text.split("&"):
        name, eq, value = pair.partition("=")
        if not eq or name not in ("grant_type", "scope") or name in out:
            return None
        value = unquote_plus(value)
        if not value.isascii():
            return None
        out[name] = value
    requested = out.get("scope")
    if requested is not None:
        # authlib refuses a scope the provider does not know (invalid_scope): the full path says so
        if not requested or requested != " ".join(requested.split()):
            return None
        if not set(requested.split(" ")) <= KNOWN_SCOPES:
            return None
    return out


_CREDS: dict[str, tuple[str, str] | None] = {}


def credentials(auth: str) -> tuple[str, str] | None:
    """(client_id, digest of the secret) of an HTTP Basic header; else None.

    A back-end sends the same header with every request: it is decoded and its secret
    hashed once (bounded memo); the digest is still compared with the client's stored
    hash on every request, so a rotated secret stops working at once."""
    try:
        return _CREDS[auth]
    except KeyError:
        pass
    creds = _basic(auth)
    found = (creds[0], digest(creds[1])) if creds is not None else None
    if len(_CREDS) >= 256:
        _CREDS.clear()
    _CREDS[auth] = found
    return found


def _basic(value: str) -> tuple[str, str] | None:
    """(client_id, secret) of an HTTP Basic header, read as authlib reads it; else None."""
    kind, _, token = value.partition(" ")
    if kind.lower() != "basic" or not token or token != token.strip() or " " in token:
        return None
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None
    client_id, secret = unquote(client_id), unquote(secret)
    return (client_id, secret) if client_id and secret else None


def headers_of(raw: list[tuple[bytes, bytes]]) -> str | None:
    """The one Authorization header, when the request is a plain form post without DPoP."""
    auth: bytes | None = None
    form = False
    for name, value in raw:
        if name == b"authorization":
            if auth is not None:
                return None
            auth = value
        elif name == b"content-type":
            if form:
                return None
            form = value == FORM or value.lower() == FORM + b"; charset=utf-8"
        elif name in (b"dpop", b"transfer-encoding"):
            return None
    if auth is None or not form:
        return None
    try:
        return auth.decode("ascii")
    except UnicodeDecodeError:
        return None


async def read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The request body; the message that stopped the read early (too big, disconnect)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            return b"".join(chunks), {
                "type": "http.request",
                "more_body": message.get("more_body", False),
            }
        if not message.get("more_body", False):
            return b"".join(chunks), None


def replay(body: bytes, stopped: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands the full path the body already read, then the rest."""
    more = stopped is not None and stopped["type"] == "http.request" and stopped["more_body"]
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": bool(more)}]
    if stopped is not None and stopped["type"] != "http.request":
        pending.append(stopped)  # the disconnect that cut the body short

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
