"""The SCIM filter and path parser (RFC 7644 §3.4.2.2, §3.5.2) on its own: precedence,
grouping, negation, value paths, literals, case, bounds, and what it refuses."""

from __future__ import annotations

import pytest

from identity.domain.scim_filter import FilterError, Path, matches, parse, parse_path
from identity.store.scim_query import And, Compare, Not, Or


class TestParse:
    @pytest.mark.parametrize(
        ("text", "tree"),
        [
            ('userName eq "bjensen"', Compare("username", "eq", "bjensen")),
            ("title pr", Compare("title", "pr")),
            ("active eq FALSE", Compare("active", "eq", False)),
            ("meta.version ne null", Compare("meta.version", "ne", None)),
            ("count gt 5", Compare("count", "gt", 5)),
            ('name.familyName co "O\'Malley"', Compare("name.familyname", "co", "O'Malley")),
            ('userName eq "a\\"b"', Compare("username", "eq", 'a"b')),
            (
                'urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"',
                Compare("username", "sw", "J"),
            ),
            (
                'a eq "1" or b eq "2" and c eq "3"',
                Or(Compare("a", "eq", "1"), And(Compare("b", "eq", "2"), Compare("c", "eq", "3"))),
            ),
            (
                '(a eq "1" or b eq "2") and c eq "3"',
                And(Or(Compare("a", "eq", "1"), Compare("b", "eq", "2")), Compare("c", "eq", "3")),
            ),
            ('not (a eq "1")', Not(Compare("a", "eq", "1"))),
            (
                'emails[type eq "work" and value co "@example.com"]',
                And(
                    Compare("emails.type", "eq", "work"),
                    Compare("emails.value", "co", "@example.com"),
                ),
            ),
            (
                'userName EQ "x" AND active Eq true',
                And(Compare("username", "eq", "x"), Compare("active", "eq", True)),
            ),
        ],
    )
    def test_trees(self, text: str, tree: object) -> None:
        assert parse(text) == tree

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "   ",
            "userName",
            "userName eq",
            'userName like "a"',
            'userName eq "a" and',
            'userName eq "a" extra',
            '(userName eq "a"',
            'userName eq "a")',
            'not userName eq "a"',
            'emails[value eq "a"',
            'emails[type eq "w"].value eq "x"',
            'emails[members[value eq "a"]]',
            'userName eq "unterminated',
            "userName eq 'single'",
            'userName eq "a"; DROP TABLE x',
            '1userName eq "a"',
            "(" * 20 + 'a eq "1"' + ")" * 20,
            " or ".join(['a eq "1"'] * 41),
            'a eq "' + "x" * 2001 + '"',
        ],
    )
    def test_refused(self, text: str) -> None:
        with pytest.raises(FilterError):
            parse(text)


class TestPaths:
    @pytest.mark.parametrize(
        ("text", "path"),
        [
            ("active", Path("active")),
            ("name.givenName", Path("name", "givenname")),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
                Path("name", "familyname"),
            ),
            (
                'emails[type eq "work"].value',
                Path("emails", "value", Compare("type", "eq", "work")),
            ),
            ('members[value eq "u1"]', Path("members", None, Compare("value", "eq", "u1"))),
        ],
    )
    def test_paths(self, text: str, path: Path) -> None:
        assert parse_path(text) == path

    @pytest.mark.parametrize(
        "text", ["", "a b", 'emails[type eq "w"', "name.given.name", "emails[]"]
    )
    def test_refused(self, text: str) -> None:
        with pytest.raises(FilterError):
            parse_path(text)


class TestMatches:
    ELEMENT = {"value": "Ann@Example.com", "type": "work", "primary": True}

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('value eq "ann@example.com"', True),
            ('value co "EXAMPLE"', True),
            ('value sw "bob"', False),
            ('type eq "work" and primary eq true', True),
            ('type eq "home" or value ew ".com"', True),
            ('not (type eq "work")', False),
            ("display pr", False),
        ],
    )
    def test_values(self, text: str, expected: bool) -> None:
        assert matches(parse(text), dict(self.ELEMENT)) is expected
