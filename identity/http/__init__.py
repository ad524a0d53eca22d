"""The HTTP edge: the app, its routes and pages (OAuth/OIDC endpoints, sign-in, sign-up,
brokering, admin APIs), problem responses and cookies. Imports ``oauth``, ``domain`` and
``store``; nothing below imports it."""
