"""The HTTP edge of partnermesh: verify tokens, enforce policies, rate-limit, route over NATS."""
