"""The matching engine: pure algorithms, no I/O (featuriser, index, batch top-k, optimiser)."""
