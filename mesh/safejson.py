"""JSON from callers: one parser for every untrusted document, bounded in depth.

The standard library's ``json.loads`` recurses once per nesting level, so a body of a
few kilobytes (``[[[[…]]]]``, ``{"a":{"a":…}}``) raises ``RecursionError`` — not a
``ValueError`` — and turns a client's mistake into a server error. :func:`loads` parses
with pydantic-core's parser instead (the one ``model_validate_json`` uses), which stops
at :data:`MAX_DEPTH` levels, and refuses what JSON itself does not allow: ``NaN`` and
``Infinity``, invalid UTF-8 (also lone surrogate escapes), trailing data, integers
beyond Python's 4300-digit conversion limit. Every refusal is a :class:`JSONError`, a
``ValueError``, so a parse boundary maps exactly one exception to its client error.

Duplicate member names keep the last value, as ``json.loads`` does; numbers too large for
a float (``1e400``) become infinity, as they do there.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

# pydantic-core refuses documents nested deeper than this (its parser's fixed limit).
MAX_DEPTH = 200
# For a document that will travel inside others (a back-end's reply in an invocation
# reply, in a mashup result; a webhook in an event envelope): room for the wrapping, so
# every hop after this one stays under MAX_DEPTH.
RELAY_DEPTH = 100


class JSONError(ValueError):
    """A document that is not JSON this process accepts (malformed, too deep, NaN…)."""


def loads(data: bytes | bytearray | str, max_depth: int = MAX_DEPTH) -> Any:
    """The value of the JSON document ``data``; :class:`JSONError` when it is refused
    (also when it nests deeper than ``max_depth``, checked when below :data:`MAX_DEPTH`)."""
    value = _parse(data)
    if max_depth < MAX_DEPTH and depth(value) > max_depth:
        raise JSONError(f"the document nests deeper than {max_depth} levels")
    return value


def depth(value: Any) -> int:
    """Levels of arrays and objects in ``value`` (0 for a scalar); iterative."""
    if not isinstance(value, dict | list):
        return 0
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _parse(data: bytes | bytearray | str) -> Any:
    try:
        # A str holding a lone surrogate is no text at all: refused by encoding it.
        return from_json(data.encode() if isinstance(data, str) else data, allow_inf_nan=False)
    except ValueError as exc:  # pydantic-core's message names the position, not the data
        raise JSONError(str(exc)) from None
    except RecursionError:  # not raised by pydantic-core today; never a server error
        raise JSONError("the document is nested too deeply") from None


def loads_object(data: bytes | bytearray | str) -> dict[str, Any]:
    """:func:`loads` for a document that must be a JSON object."""
    value = loads(data)
    if not isinstance(value, dict):
        raise JSONError("not a JSON object")
    return value
