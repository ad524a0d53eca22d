"""The pages people use, on a generated ecosystem of 1k, 10k and 100k people (``make bench-scale``)."""
