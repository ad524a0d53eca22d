"""Constant-time comparison of caller-chosen strings: any characters, never a TypeError."""

from __future__ import annotations

import hmac

import pytest

from mesh.consttime import same


class TestSame:
    def test_the_standard_comparison_refuses_non_ascii_text(self) -> None:
        with pytest.raises(TypeError):
            hmac.compare_digest("é", "e")

    @pytest.mark.parametrize(
        ("a", "b", "equal"),
        [
            ("abc", "abc", True),
            ("abc", "abd", False),
            ("é", "é", True),
            ("é", "e", False),
            ("\ud800", "\ud800", True),  # a lone surrogate (from a lenient decoder)
            ("\ud800", "x", False),
            ("", "", True),
        ],
    )
    def test_any_strings(self, a: str, b: str, equal: bool) -> None:
        assert same(a, b) is equal

    @pytest.mark.parametrize("other", [None, 5, b"abc", ["abc"]])
    def test_a_non_string_is_never_equal(self, other: int | bytes | list[str] | None) -> None:
        assert same("abc", other) is False  # type: ignore[arg-type]
        assert same(other, "abc") is False  # type: ignore[arg-type]
