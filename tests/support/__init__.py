"""Test infrastructure: real NATS, real databases, real HTTP servers, real signed tokens."""
