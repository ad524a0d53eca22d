"""Driving the provider from outside a request: the commands of ``python -m identity``,
the demo ecosystem seed and a client that walks the authorization-code flow. Imports
``domain`` and ``store``."""
