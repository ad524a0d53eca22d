"""The connector's egress guard: the kit's (:mod:`mesh.egress`), which identity's
back-channel logout calls go through as well."""

from mesh.egress import (
    METADATA,
    EgressRefused,
    GuardedBackend,
    Network,
    Unresolvable,
    check_url,
    checked_addresses,
    parse_network,
    parse_networks,
    refusal,
    resolve,
    unwrap,
)

__all__ = [
    "METADATA",
    "EgressRefused",
    "GuardedBackend",
    "Network",
    "Unresolvable",
    "check_url",
    "checked_addresses",
    "parse_network",
    "parse_networks",
    "refusal",
    "resolve",
    "unwrap",
]
