"""Small helpers to read HTML form values."""

from __future__ import annotations

from typing import Any


def split_tags(value: Any, limit: int = 40) -> list[str]:
    """``"a, b,, c"`` → ``["a", "b", "c"]`` (comma or newline separated, duplicates dropped)."""
    if not isinstance(value, str):
        return []
    seen: list[str] = []
    for part in value.replace("\n", ",").split(","):
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen[:limit]


def text(form: Any, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default
