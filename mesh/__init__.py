"""The shared runtime kit: settings, NATS service base, database, outbox, tokens, logs, metrics.

Imported by identity, gateway and services; imports none of them (only ``contracts``).
"""
