"""Which redirect URIs a client may use: exact matches, and a native app's loopback port.

A native app receives the authorization response on a loopback port that its operating
system hands it when it starts listening, so it cannot register the port in advance
(RFC 8252 §7.3). For clients registered as native (``application_type: native``, OpenID
Connect Dynamic Client Registration §2), a requested ``http://127.0.0.1:{port}/path`` or
``http://[::1]:{port}/path`` matches a registered loopback URI that differs from it in the
port alone. Nothing else is relaxed: ``localhost`` (a name that may resolve off the
machine, RFC 8252 §8.3), another host, path or query, https (claimed) redirects and
private-use schemes match exactly, and web clients always match exactly.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_IPS = ("127.0.0.1", "::1")


def _loopback(uri: str) -> tuple[str, str, str] | None:
    """(host, path, query) of a plain ``http`` loopback IP-literal URI, else ``None``."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    host = parts.hostname
    if parts.scheme != "http" or host not in LOOPBACK_IPS or parts.fragment:
        return None
    literal = f"[{host}]" if ":" in host else host
    if parts.netloc not in (literal, f"{literal}:{port}"):  # no user info, no odd spelling
        return None
    return host, parts.path, parts.query


def redirect_allowed(requested: str, registered: list[str], *, native: bool) -> bool:
    if requested in registered:
        return True
    if not native:
        return False
    wanted = _loopback(requested)
    return wanted is not None and any(_loopback(uri) == wanted for uri in registered)
