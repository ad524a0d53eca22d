"""Literal, case-insensitive word search in SQL that means the same on SQLite and PostgreSQL.

A query is split into words; a row matches when every word appears in one of the searched
columns. Each word is matched with ``lower(column) LIKE '%word%' ESCAPE '\\'``, its ``%``,
``_`` and ``\\`` escaped, so user input is never a pattern. (SQLite's ``lower`` folds ASCII
letters only; PostgreSQL's folds every letter.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_

MAX_WORDS = 8
MAX_WORD = 64


def words(query: str) -> list[str]:
    """The distinct words of ``query`` (lowercased, at most :data:`MAX_WORDS`)."""
    found: list[str] = []
    for word in query.lower().split():
        word = word[:MAX_WORD]
        if word not in found:
            found.append(word)
    return found[:MAX_WORDS]


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(column: Any, word: str) -> ColumnElement[bool]:
    return func.lower(column).like(f"%{escape_like(word.lower())}%", escape="\\")


def matches_all(columns: Sequence[Any], query_words: Sequence[str]) -> ColumnElement[bool]:
    """Every word in at least one of ``columns`` (nothing matches no words)."""
    if not query_words:
        return false()
    return and_(*(or_(*(contains(c, w) for c in columns)) for w in query_words))


_MARKUP = re.compile(r"[*`#>\[\]]+|\s+")


def excerpt(text: str, query_words: Sequence[str], width: int = 220) -> str:
    """Plain text of ``text`` (Markdown marks dropped) around the first matched word."""
    plain = _MARKUP.sub(lambda m: " " if m.group(0).isspace() else "", text).strip()
    lower = plain.lower()
    hits = [i for i in (lower.find(w) for w in query_words) if i >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    if start:
        space = plain.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    end = min(len(plain), start + width)
    if end < len(plain):
        space = plain.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    return ("…" if start else "") + plain[start:end] + ("…" if end < len(plain) else "")
