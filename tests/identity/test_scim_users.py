"""SCIM Users (RFC 7643 §4.1, RFC 7644 §3) on plain HTTP against a real provider: create,
read, filter, paginate, replace, patch (Entra ID's and Okta's forms), ETags, conflicts,
errors, delete."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.identity.conftest import IdP
from tests.identity.scim_support import (
    SCIM_JSON,
    USER,
    Directory,
    assert_scim_error,
    issue_directory,
    unique,
)


@pytest.fixture(scope="module")
async def northwind(idp: IdP) -> Directory:
    nadia = (await idp.person_tokens("nadia"))["access_token"]
    return await issue_directory(idp, nadia, "northwind")


class TestCreateAndRead:
    async def test_create_answers_the_resource_its_location_and_etag(
        self, northwind: Directory
    ) -> None:
        name = unique("ada")
        body = {
            "schemas": [USER],
            "userName": f"{name}@northwind.example",
            "externalId": "entra-123",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "displayName": "Ada Lovelace",
            "emails": [{"value": "ada@northwind.example", "type": "work", "primary": True}],
            "active": True,
            "roles": [{"value": "operator"}],  # read-only: ignored
        }
        resp = await northwind.call("POST", "/Users", body)
        assert resp.status_code == 201, resp.text
        assert resp.headers["content-type"].startswith(SCIM_JSON)
        doc = resp.json()
        assert doc["schemas"] == [USER] and doc["userName"] == body["userName"]
        assert doc["name"]["givenName"] == "Ada" and doc["displayName"] == "Ada Lovelace"
        assert doc["emails"][0]["value"] == "ada@northwind.example"
        assert doc["externalId"] == "entra-123" and doc["active"] is True
        assert doc["roles"] == [{"value": "member"}]
        meta = doc["meta"]
        assert meta["resourceType"] == "User" and meta["created"].endswith("Z")
        assert resp.headers["location"] == meta["location"] == f"{northwind.base}/Users/{doc['id']}"
        assert resp.headers["etag"] == meta["version"] and meta["version"].startswith('W/"')
        got = await northwind.call("GET", f"/Users/{doc['id']}")
        assert got.status_code == 200 and got.json() == doc

    async def test_a_taken_user_name_in_any_case_is_a_uniqueness_conflict(
        self, northwind: Directory
    ) -> None:
        user = await northwind.create_user()
        again = {"schemas": [USER], "userName": user["userName"].upper()}
        assert_scim_error(await northwind.call("POST", "/Users", again), 409, "uniqueness")
        # a seeded person of another partner holds "chloe": taken ecosystem-wide
        other = {"schemas": [USER], "userName": "chloe"}
        assert_scim_error(await northwind.call("POST", "/Users", other), 409, "uniqueness")

    @pytest.mark.parametrize(
        ("raw", "scim_type"),
        [
            (b"not json", "invalidSyntax"),
            (b"[1, 2]", "invalidSyntax"),
            (b'{"schemas": []}', "invalidValue"),  # no userName
            (b'{"userName": "has space"}', "invalidValue"),
            (b'{"userName": "ok.name", "active": "maybe"}', "invalidValue"),
            (b'{"userName": "ok.name", "emails": "x@y"}', "invalidValue"),
        ],
    )
    async def test_bad_bodies_are_scim_errors(
        self, northwind: Directory, raw: bytes, scim_type: str
    ) -> None:
        resp = await northwind.http.post(
            f"{northwind.base}/Users",
            content=raw,
            headers={"Authorization": f"Bearer {northwind.token}", "Content-Type": SCIM_JSON},
        )
        assert_scim_error(resp, 400, scim_type)

    async def test_an_unknown_id_is_404(self, northwind: Directory) -> None:
        assert_scim_error(await northwind.call("GET", "/Users/nobody"), 404)

    async def test_attributes_and_excluded_attributes(self, northwind: Directory) -> None:
        user = await northwind.create_user(displayName="Shown")
        only = await northwind.call(
            "GET", f"/Users/{user['id']}", params={"attributes": "userName"}
        )
        assert set(only.json()) == {"schemas", "id", "meta", "userName"}
        less = await northwind.call(
            "GET", f"/Users/{user['id']}", params={"excludedAttributes": "groups,emails"}
        )
        assert "groups" not in less.json() and less.json()["displayName"] == "Shown"


@pytest.fixture(scope="module")
async def people(northwind: Directory) -> dict[str, Any]:
    tag = unique("f")
    made = {}
    for i, (given, active) in enumerate([("Ann", True), ("Bob", False), ("Cid", True)]):
        made[given] = await northwind.create_user(
            userName=f"{tag}-{given.lower()}@corp.example",
            externalId=f"{tag}-ext-{i}",
            displayName=f"{given} {tag}",
            emails=[{"value": f"{given.lower()}.{tag}@mail.example", "primary": True}],
            active=active,
        )
    return {"tag": tag, **made}


class TestFilterAndPages:
    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ('userName eq "{tag}-ann@corp.example"', {"Ann"}),
            ('USERNAME EQ "{TAG}-ANN@CORP.EXAMPLE"', {"Ann"}),  # names, ops, userName: any case
            ('userName sw "{tag}-"', {"Ann", "Bob", "Cid"}),
            ('userName co "-bo"', {"Bob"}),
            ('userName ew "cid@corp.example" and userName sw "{tag}"', {"Cid"}),
            ('externalId eq "{tag}-ext-2"', {"Cid"}),
            ('externalId eq "{TAG}-EXT-2"', set()),  # externalId is case-exact
            ('emails co "ann.{tag}"', {"Ann"}),
            ('emails.value sw "bob.{tag}"', {"Bob"}),
            ('emails[type eq "work" and value co "cid.{tag}"]', {"Cid"}),
            ('displayName sw "Ann {tag}" or displayName sw "Bob {tag}"', {"Ann", "Bob"}),
            ('userName sw "{tag}" and active eq false', {"Bob"}),
            ('userName sw "{tag}" and active eq true', {"Ann", "Cid"}),
            ('userName sw "{tag}" and not (active eq true)', {"Bob"}),
            ('userName sw "{tag}" and externalId pr', {"Ann", "Bob", "Cid"}),
            (
                'userName sw "{tag}" and (displayName co "ann" or displayName co "cid")',
                {"Ann", "Cid"},
            ),
            (
                'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "{tag}-bob@corp.example"',
                {"Bob"},
            ),
        ],
    )
    async def test_filters(
        self, northwind: Directory, people: dict[str, Any], template: str, expected: set[str]
    ) -> None:
        text = template.replace("{tag}", people["tag"]).replace("{TAG}", people["tag"].upper())
        doc = await northwind.find("Users", text)
        found = {
            given
            for given in ("Ann", "Bob", "Cid")
            if people[given]["id"] in {r["id"] for r in doc["Resources"]}
        }
        assert found == expected, (text, doc)
        assert doc["totalResults"] == len(doc["Resources"]) == len(expected)

    @pytest.mark.parametrize(
        "text",
        [
            'userName eq "x" or 1 eq 1',
            "userName eq",
            'userName xx "a"',
            'userName eq "a" and',
            '(userName eq "a"',
            'password eq "secret"',  # not filterable
            'active co "t"',  # a boolean is no string
            'userName eq "a"; DROP TABLE id_people',
            "(" * 40 + 'userName eq "a"' + ")" * 40,
            'userName eq "' + "a" * 3000 + '"',
        ],
    )
    async def test_a_bad_filter_is_invalid_filter(self, northwind: Directory, text: str) -> None:
        resp = await northwind.call("GET", "/Users", params={"filter": text})
        assert_scim_error(resp, 400, "invalidFilter")

    async def test_values_are_never_sql(self, northwind: Directory, people: dict[str, Any]) -> None:
        """Quotes, wildcards and comments in a value match themselves, nothing else."""
        for value in ("' OR '1'='1", "%", "_", "\\", '\\" or \\"1\\"=\\"1', "--"):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            doc = await northwind.find("Users", f'userName co "{escaped}"')
            assert doc["totalResults"] == 0, (value, doc)

    async def test_search_by_post(self, northwind: Directory, people: dict[str, Any]) -> None:
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'userName sw "{people["tag"]}" and active eq true',
            "startIndex": 1,
            "count": 10,
            "attributes": ["userName"],
        }
        resp = await northwind.call("POST", "/Users/.search", body)
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert doc["totalResults"] == 2
        assert {r["id"] for r in doc["Resources"]} == {people["Ann"]["id"], people["Cid"]["id"]}
        assert all(set(r) == {"schemas", "id", "meta", "userName"} for r in doc["Resources"])
        no_schema = await northwind.call("POST", "/Users/.search", {"filter": "userName pr"})
        assert_scim_error(no_schema, 400, "invalidSyntax")
        bad = await northwind.call("POST", "/Users/.search", {**body, "count": True})
        assert_scim_error(bad, 400, "invalidValue")
        groups = await northwind.call(
            "POST", "/Groups/.search", {**body, "filter": "displayName pr"}
        )
        assert groups.status_code == 200 and groups.json()["schemas"] == [
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        ]

    async def test_pages(self, northwind: Directory, people: dict[str, Any]) -> None:
        text = f'userName sw "{people["tag"]}"'
        first = await northwind.find("Users", text, startIndex="1", count="2")
        assert first["totalResults"] == 3 and first["itemsPerPage"] == 2
        assert first["startIndex"] == 1 and first["schemas"] == [
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        ]
        second = await northwind.find("Users", text, startIndex="3", count="2")
        assert second["itemsPerPage"] == 1 and second["startIndex"] == 3
        ids = [r["id"] for r in first["Resources"] + second["Resources"]]
        assert sorted(ids) == sorted(people[g]["id"] for g in ("Ann", "Bob", "Cid"))
        counted = await northwind.find("Users", text, count="0")
        assert counted["totalResults"] == 3 and counted["Resources"] == []
        beyond = await northwind.find("Users", text, startIndex="0", count="-5")
        assert beyond["startIndex"] == 1 and beyond["Resources"] == []
        bad = await northwind.call("GET", "/Users", params={"count": "many"})
        assert_scim_error(bad, 400, "invalidValue")


class TestPatch:
    async def test_entra_style_operations(self, northwind: Directory) -> None:
        user = await northwind.create_user(emails=[{"value": "old@n.example", "type": "work"}])
        resp = await northwind.patch(
            "Users",
            user["id"],
            {"op": "Replace", "path": "displayName", "value": "New Name"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "new@n.example"},
            {"op": "Replace", "path": "name.givenName", "value": "Given"},
            {"op": "Add", "path": "externalId", "value": "aad-9"},
            {"op": "Replace", "path": "active", "value": "False"},
        )
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert doc["displayName"] == "New Name" and doc["name"]["givenName"] == "Given"
        assert doc["emails"][0]["value"] == "new@n.example" and doc["externalId"] == "aad-9"
        assert doc["active"] is False
        back = await northwind.patch(
            "Users", user["id"], {"op": "Replace", "path": "active", "value": "True"}
        )
        assert back.json()["active"] is True

    async def test_okta_style_operations_without_a_path(self, northwind: Directory) -> None:
        user = await northwind.create_user()
        resp = await northwind.patch(
            "Users",
            user["id"],
            {
                "op": "replace",
                "value": {"id": user["id"], "active": False, "name": {"familyName": "F"}},
            },
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["active"] is False and resp.json()["name"]["familyName"] == "F"

    async def test_remove(self, northwind: Directory) -> None:
        user = await northwind.create_user(externalId="x", emails=[{"value": "r@n.example"}])
        resp = await northwind.patch(
            "Users",
            user["id"],
            {"op": "remove", "path": "externalId"},
            {"op": "remove", "path": 'emails[value eq "r@n.example"]'},
        )
        assert resp.status_code == 200, resp.text
        assert "externalId" not in resp.json() and resp.json()["emails"] == []

    @pytest.mark.parametrize(
        ("op", "scim_type"),
        [
            ({"op": "replace", "path": "nickName", "value": "x"}, "invalidPath"),
            ({"op": "replace", "path": "emails[type eq", "value": "x"}, "invalidPath"),
            ({"op": "remove", "path": 'emails[value eq "nobody@x"]'}, "noTarget"),
            ({"op": "remove", "path": "userName"}, "mutability"),
            ({"op": "replace", "path": "groups", "value": []}, "mutability"),
            ({"op": "remove"}, "noTarget"),
            ({"op": "move", "path": "active", "value": True}, "invalidSyntax"),
            ({"op": "replace", "path": "active", "value": "perhaps"}, "invalidValue"),
        ],
    )
    async def test_refused_operations_change_nothing(
        self, northwind: Directory, op: dict[str, Any], scim_type: str
    ) -> None:
        user = await northwind.create_user(emails=[{"value": "keep@n.example"}])
        first = {"op": "replace", "path": "displayName", "value": "Changed"}
        resp = await northwind.patch("Users", user["id"], first, op)
        assert_scim_error(resp, 400, scim_type)
        after = (await northwind.call("GET", f"/Users/{user['id']}")).json()
        assert after == user  # the first operation was not kept either

    async def test_a_patch_without_its_schema_is_invalid_syntax(self, northwind: Directory) -> None:
        user = await northwind.create_user()
        body = {"Operations": [{"op": "replace", "path": "active", "value": False}]}
        resp = await northwind.call("PATCH", f"/Users/{user['id']}", body)
        assert_scim_error(resp, 400, "invalidSyntax")

    async def test_renaming_onto_a_taken_user_name_is_409(self, northwind: Directory) -> None:
        a, b = await northwind.create_user(), await northwind.create_user()
        resp = await northwind.patch(
            "Users", a["id"], {"op": "replace", "path": "userName", "value": b["userName"]}
        )
        assert_scim_error(resp, 409, "uniqueness")


class TestReplaceEtagsDelete:
    async def test_put_replaces_and_clears_what_it_leaves_out(self, northwind: Directory) -> None:
        user = await northwind.create_user(externalId="e1", displayName="Before")
        body = {"schemas": [USER], "userName": user["userName"], "displayName": "After"}
        resp = await northwind.call("PUT", f"/Users/{user['id']}", body)
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert doc["displayName"] == "After" and "externalId" not in doc and doc["active"]

    async def test_if_match_and_if_none_match(self, northwind: Directory) -> None:
        user = await northwind.create_user()
        tag = user["meta"]["version"]
        same = await northwind.call("GET", f"/Users/{user['id']}", headers={"If-None-Match": tag})
        assert same.status_code == 304 and same.headers["etag"] == tag
        op = {"op": "replace", "path": "displayName", "value": "V2"}
        ok = await northwind.patch("Users", user["id"], op, headers={"If-Match": tag})
        assert ok.status_code == 200 and ok.headers["etag"] != tag
        stale = {"op": "replace", "path": "displayName", "value": "V3"}
        resp = await northwind.patch("Users", user["id"], stale, headers={"If-Match": tag})
        assert_scim_error(resp, 412)
        body = {"schemas": [USER], "userName": user["userName"]}
        put = await northwind.call("PUT", f"/Users/{user['id']}", body, headers={"If-Match": tag})
        assert_scim_error(put, 412)
        gone = await northwind.call("DELETE", f"/Users/{user['id']}", headers={"If-Match": tag})
        assert_scim_error(gone, 412)
        now = (await northwind.call("GET", f"/Users/{user['id']}")).json()
        assert now["displayName"] == "V2"
        star = await northwind.patch("Users", user["id"], stale, headers={"If-Match": "*"})
        assert star.status_code == 200
        changed = await northwind.call(
            "GET", f"/Users/{user['id']}", headers={"If-None-Match": tag}
        )
        assert changed.status_code == 200

    async def test_two_writers_with_one_version_one_wins(self, northwind: Directory) -> None:
        user = await northwind.create_user()
        tag = user["meta"]["version"]

        async def write(name: str) -> int:
            op = {"op": "replace", "path": "displayName", "value": name}
            resp = await northwind.patch("Users", user["id"], op, headers={"If-Match": tag})
            return resp.status_code

        results = await asyncio.gather(*(write(f"W{i}") for i in range(4)))
        assert sorted(results) == [200, 412, 412, 412], results

    async def test_delete_hides_the_person_and_frees_the_user_name(
        self, northwind: Directory
    ) -> None:
        user = await northwind.create_user()
        resp = await northwind.call("DELETE", f"/Users/{user['id']}")
        assert resp.status_code == 204
        assert_scim_error(await northwind.call("GET", f"/Users/{user['id']}"), 404)
        assert_scim_error(await northwind.call("DELETE", f"/Users/{user['id']}"), 404)
        assert (await northwind.find("Users", f'userName eq "{user["userName"]}"'))[
            "totalResults"
        ] == 0
        again = await northwind.create_user(userName=user["userName"])
        assert again["id"] != user["id"]
