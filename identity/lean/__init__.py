"""The lean path of the token endpoint, switched by ``PM_IDENTITY_LEAN`` (default on).

- :mod:`identity.lean.shortcut`: ASGI middleware in front of the app that answers the
  common client-credentials request itself when everything it needs is cached, and hands
  anything else, body intact, to the full path.
- :mod:`identity.lean.request`: how it reads a request (path, headers, body, form, HTTP
  Basic credentials); anything odd reads as "not for the lean path".
- :mod:`identity.lean.templates`: what a client's tokens and audit events are built from,
  worked out once per cached row by the full path's own functions.
- :mod:`identity.lean.audit`: the audit writer for a SQLite file and the relay hand-over.
- :mod:`identity.lean.ids`: random ``jti`` and audit event ids from a pool of OS randomness.

With ``PM_IDENTITY_LEAN=off`` none of this is used: every token goes through FastAPI and
authlib, and audit batches through the kit's session writer.
"""
