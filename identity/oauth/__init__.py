"""OAuth 2.0 / OpenID Connect on authlib: the authorization server, its grants, token
exchange, introspection and revocation, client authentication. Imports ``domain`` and
``store``, never ``http``."""
