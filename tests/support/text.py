"""Reading values out of pages and headers in tests."""

from __future__ import annotations

import re


def first_group(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s first match in ``text``; the test fails without one."""
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not found in {text[:300]!r}"
    return found.group(1)
