"""Everything that crosses a process boundary in partnermesh, and nothing else.

Claim names, scopes and roles; NATS subjects and headers; the event envelope and
versioned event models; request and reply models with the policy of every
operation; error codes. No I/O lives here: JSON Schema and AsyncAPI documents are
generated from these models by ``contracts.export``.
"""

VERSION = "v1"
