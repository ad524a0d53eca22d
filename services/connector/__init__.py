"""Connector service: partners open their back-end systems to chosen partners.

Vaulted credentials, grants, guarded invocation (SSRF guard, retries, circuit
breaker, audit), Standard Webhooks in and out, and durable supply-chain flows.
"""
