"""The pages people use, on generated ecosystems of 1k, 10k and 100k people.

``make bench-scale`` (``python -m bench.scale``); not part of ``make bench``.
"""
