"""The mesh's NATS services. They never import each other: only contracts and mesh."""
