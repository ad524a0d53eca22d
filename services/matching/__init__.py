"""Matching service: reciprocal suggestions and optimal, double-opt-in introductions."""
