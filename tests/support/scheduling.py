"""The order in which ``make test`` hands test files to its parallel workers.

``make test`` runs pytest-xdist with ``--dist loadfile``: each file runs whole on one
worker, so its module- and session-scoped fixtures (a started service, a provider, a
mesh) are set up once there. xdist hands the files out in the order the workers
collected them (``--no-loadscope-reorder``; by default it would sort them by number of
tests alone). Here, on each worker, the collection is ordered longest file first
(longest-processing-time first): a long file handed out last keeps one worker running
while the others idle. A file's expected length is its number of tests, each test
marked ``slow`` (processes, clusters, fault drills, fuzzing) counting as
:data:`SLOW_WEIGHT` tests.

The tests of one file keep their order (pytest's, which groups them by fixture
parameters). A run without workers is left as it is.
"""

from __future__ import annotations

from collections import Counter

import pytest

SLOW_WEIGHT = 25  # a slow test takes about as long as this many ordinary ones


def file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker: the files longest first, after pytest has ordered the items."""
    if not hasattr(config, "workerinput"):
        return
    files = [file_of(item) for item in items]
    weight: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, (path, item) in enumerate(zip(files, items, strict=True)):
        weight[path] += SLOW_WEIGHT if item.get_closest_marker("slow") else 1
        first.setdefault(path, i)
    order = sorted(range(len(items)), key=lambda i: (-weight[files[i]], first[files[i]], i))
    items[:] = [items[i] for i in order]
