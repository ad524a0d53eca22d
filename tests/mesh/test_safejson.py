"""The kit's parser for untrusted JSON: bounded depth, strict JSON, one exception type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mesh import jws, safejson
from tests.support.bombs import BOMBS, ODD_BODIES, compact, nested_arrays, token_bombs


class TestLoads:
    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    def test_a_depth_bomb_is_a_json_error(self, bomb: str) -> None:
        with pytest.raises(RecursionError):  # what the standard parser does with it
            json.loads(bomb)
        with pytest.raises(safejson.JSONError, match="recursion limit"):
            safejson.loads(bomb)

    def test_nesting_up_to_the_limit_parses(self) -> None:
        value = safejson.loads(nested_arrays(safejson.MAX_DEPTH))
        depth = 0
        while value:
            value, depth = value[0], depth + 1
        assert depth == safejson.MAX_DEPTH - 1  # the innermost array is empty

    @pytest.mark.parametrize(
        "name", ["huge-integer", "nan", "infinity", "invalid-utf8", "lone-surrogate"]
    )
    def test_what_json_does_not_allow_is_refused(self, name: str) -> None:
        with pytest.raises(safejson.JSONError):
            safejson.loads(ODD_BODIES[name])

    def test_a_smaller_bound_for_documents_that_travel_on(self) -> None:
        assert safejson.loads(nested_arrays(safejson.RELAY_DEPTH), safejson.RELAY_DEPTH)
        with pytest.raises(safejson.JSONError, match="deeper than"):
            safejson.loads(nested_arrays(safejson.RELAY_DEPTH + 1), safejson.RELAY_DEPTH)

    @pytest.mark.parametrize(
        ("value", "levels"), [(1, 0), ([], 1), ({"a": [1, {"b": []}]}, 4), ([[], [[[]]]], 4)]
    )
    def test_depth(self, value: object, levels: int) -> None:
        assert safejson.depth(value) == levels

    def test_a_str_with_a_lone_surrogate_is_refused(self) -> None:
        with pytest.raises(safejson.JSONError):
            safejson.loads('"\ud800"')

    @pytest.mark.parametrize(
        ("doc", "value"),
        [
            (b'{"a": 1, "a": 2}', {"a": 2}),
            (b'{"a": [1, 2.5, "\\u00e9", true, null]}', {"a": [1, 2.5, "é", True, None]}),
            ('{"k": "ü"}', {"k": "ü"}),
            (b'"\\ud83d\\ude00"', "😀"),
        ],
    )
    def test_plain_json_parses_as_the_standard_parser_does(
        self, doc: bytes | str, value: dict[str, int] | dict[str, Any] | dict[str, str] | str
    ) -> None:
        assert safejson.loads(doc) == value == json.loads(doc)

    def test_loads_object_refuses_other_values(self) -> None:
        assert safejson.loads_object(b"{}") == {}
        with pytest.raises(safejson.JSONError, match="not a JSON object"):
            safejson.loads_object(b"[]")


class TestCompactJws:
    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    def test_a_nested_token_is_malformed(self, token: str) -> None:
        with pytest.raises(ValueError):
            jws.parse_compact(token)

    def test_a_shallow_token_parses(self) -> None:
        parsed = jws.parse_compact(compact('{"alg": "ES256"}', '{"sub": "x"}'))
        assert parsed.header == {"alg": "ES256"} and parsed.payload == {"sub": "x"}
