"""SCIM input that is not what the RFCs say is a 400 (or 413) with its ``scimType``,
never a 500: odd PATCH documents, dates in filters, a body too large."""

from __future__ import annotations

from typing import Any

import pytest

from tests.identity.conftest import IdP
from tests.identity.scim_support import (
    PATCH_OP,
    USER,
    Directory,
    assert_scim_error,
    issue_directory,
)


@pytest.fixture(scope="module")
async def northwind(idp: IdP) -> Directory:
    nadia = (await idp.person_tokens("nadia"))["access_token"]
    return await issue_directory(idp, nadia, "northwind")


class TestHostileInput:
    @pytest.mark.parametrize(
        ("body", "scim_type"),
        [
            ({"schemas": 5, "Operations": []}, "invalidSyntax"),
            ({"schemas": [PATCH_OP], "Operations": "replace"}, "invalidSyntax"),
            ({"schemas": [PATCH_OP], "Operations": [5]}, "invalidSyntax"),
            (
                {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": 5, "value": 1}]},
                "invalidPath",
            ),
            (
                {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": 5}]},
                "invalidValue",
            ),
            (
                {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"a:b:c": 1}}]},
                "invalidPath",
            ),
            (
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "name", "value": 1}],
                },
                "invalidValue",
            ),
            (
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "add", "path": "emails", "value": [1]}],
                },
                "invalidValue",
            ),
            (
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "add", "path": "userName", "value": "x" * 121}],
                },
                "invalidValue",
            ),
            (
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "password", "value": 7}],
                },
                "invalidValue",
            ),
        ],
    )
    async def test_odd_patches_are_400s(
        self, northwind: Directory, body: dict[str, Any], scim_type: str
    ) -> None:
        user = await northwind.create_user()
        resp = await northwind.call("PATCH", f"/Users/{user['id']}", body)
        assert_scim_error(resp, 400, scim_type)

    @pytest.mark.parametrize(
        "text",
        [
            'meta.lastModified gt "2020-01-01T00:00:00Z"',
            'meta.created ge "2020-01-01T00:00:00"',  # no zone: taken as UTC
            'meta.lastModified lt "2999-01-01T00:00:00+02:00"',
        ],
    )
    async def test_dates_compare(self, northwind: Directory, text: str) -> None:
        user = await northwind.create_user()
        doc = await northwind.find("Users", f'{text} and id eq "{user["id"]}"')
        assert doc["totalResults"] == 1

    async def test_a_bad_date_is_invalid_filter(self, northwind: Directory) -> None:
        resp = await northwind.call("GET", "/Users", params={"filter": 'meta.created gt "soon"'})
        assert_scim_error(resp, 400, "invalidFilter")

    async def test_a_huge_body_is_413(self, northwind: Directory) -> None:
        body = {"schemas": [USER], "userName": "big", "displayName": "x" * 300_000}
        assert_scim_error(await northwind.call("POST", "/Users", body), 413)
