"""SCIM Groups (RFC 7643 §4.2) and the partner admin's rules mapping groups to roles,
on plain HTTP against a real provider."""

from __future__ import annotations

from typing import Any

import pytest

from tests.identity.conftest import IdP
from tests.identity.scim_support import (
    GROUP,
    Directory,
    admin_call,
    assert_scim_error,
    issue_directory,
    unique,
)

RULES = "/partners/northwind/scim-role-rules"


@pytest.fixture(scope="module")
async def tokens(idp: IdP) -> dict[str, str]:
    names = ("olivia", "nadia", "carlos", "noah")
    return {n: (await idp.person_tokens(n))["access_token"] for n in names}


@pytest.fixture(scope="module")
async def northwind(idp: IdP, tokens: dict[str, str]) -> Directory:
    return await issue_directory(idp, tokens["nadia"], "northwind")


@pytest.fixture(scope="module")
async def contoso(idp: IdP, tokens: dict[str, str]) -> Directory:
    return await issue_directory(idp, tokens["carlos"], "contoso")


async def _group(directory: Directory, name: str, members: list[str]) -> dict[str, Any]:
    body = {
        "schemas": [GROUP],
        "displayName": name,
        "members": [{"value": m} for m in members],
    }
    resp = await directory.call("POST", "/Groups", body)
    assert resp.status_code == 201, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


async def _roles(directory: Directory, user_id: str) -> list[str]:
    doc = (await directory.call("GET", f"/Users/{user_id}")).json()
    return sorted(r["value"] for r in doc["roles"])


async def _set_rules(idp: IdP, token: str, rules: list[dict[str, Any]]) -> Any:
    return await admin_call(idp, token, "PUT", RULES, {"rules": rules})


class TestGroups:
    async def test_create_read_filter_and_members_on_both_sides(self, northwind: Directory) -> None:
        ann, bob = await northwind.create_user(), await northwind.create_user()
        name = unique("Engineering ")
        group = await _group(northwind, name, [ann["id"]])
        assert group["schemas"] == [GROUP] and group["displayName"] == name
        assert [m["value"] for m in group["members"]] == [ann["id"]]
        assert group["meta"]["resourceType"] == "Group"
        user = (await northwind.call("GET", f"/Users/{ann['id']}")).json()
        assert [g["value"] for g in user["groups"]] == [group["id"]]
        found = await northwind.find("Groups", f'displayName eq "{name.upper()}"')
        assert [g["id"] for g in found["Resources"]] == [group["id"]]
        member = f'id eq "{group["id"]}" and members[value eq "{ann["id"]}"]'
        assert (await northwind.find("Groups", member))["totalResults"] == 1
        other = f'id eq "{group["id"]}" and members[value eq "{bob["id"]}"]'
        assert (await northwind.find("Groups", other))["totalResults"] == 0
        slim = await northwind.call(
            "GET", f"/Groups/{group['id']}", params={"excludedAttributes": "members"}
        )
        assert "members" not in slim.json() and slim.json()["displayName"] == name

    async def test_entra_style_membership_patches(self, northwind: Directory) -> None:
        ann, bob = await northwind.create_user(), await northwind.create_user()
        group = await _group(northwind, unique("Sales "), [])
        add = {
            "op": "Add",
            "path": "members",
            "value": [{"value": ann["id"]}, {"value": bob["id"]}],
        }
        resp = await northwind.patch("Groups", group["id"], add)
        assert resp.status_code == 200, resp.text
        assert {m["value"] for m in resp.json()["members"]} == {ann["id"], bob["id"]}
        remove = {"op": "Remove", "path": f'members[value eq "{ann["id"]}"]'}
        resp = await northwind.patch("Groups", group["id"], remove)
        assert [m["value"] for m in resp.json()["members"]] == [bob["id"]]
        entra_remove = {"op": "Remove", "path": "members", "value": [{"value": bob["id"]}]}
        rename = {"op": "Replace", "path": "displayName", "value": "Renamed " + group["id"][:6]}
        resp = await northwind.patch("Groups", group["id"], entra_remove, rename)
        assert resp.json()["members"] == [] and resp.json()["displayName"].startswith("Renamed")
        okta = {"op": "replace", "value": {"id": group["id"], "members": [{"value": ann["id"]}]}}
        resp = await northwind.patch("Groups", group["id"], okta)
        assert [m["value"] for m in resp.json()["members"]] == [ann["id"]]
        missing = {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'}
        assert_scim_error(await northwind.patch("Groups", group["id"], missing), 400, "noTarget")

    async def test_conflicts_foreign_members_etags_and_delete(
        self, northwind: Directory, contoso: Directory
    ) -> None:
        name = unique("Ops ")
        group = await _group(northwind, name, [])
        dup = {"schemas": [GROUP], "displayName": name.lower()}
        assert_scim_error(await northwind.call("POST", "/Groups", dup), 409, "uniqueness")
        stranger = await contoso.create_user()
        add = {"op": "add", "path": "members", "value": [{"value": stranger["id"]}]}
        assert_scim_error(await northwind.patch("Groups", group["id"], add), 400, "invalidValue")
        assert_scim_error(await contoso.call("GET", f"/Groups/{group['id']}"), 404)
        assert (await contoso.find("Groups", f'displayName eq "{name}"'))["totalResults"] == 0
        tag = group["meta"]["version"]
        put = {"schemas": [GROUP], "displayName": name, "externalId": "g-1"}
        ok = await northwind.call("PUT", f"/Groups/{group['id']}", put, {"If-Match": tag})
        assert ok.status_code == 200 and ok.json()["externalId"] == "g-1"
        stale = await northwind.call("DELETE", f"/Groups/{group['id']}", headers={"If-Match": tag})
        assert_scim_error(stale, 412)
        assert (await northwind.call("DELETE", f"/Groups/{group['id']}")).status_code == 204
        assert_scim_error(await northwind.call("GET", f"/Groups/{group['id']}"), 404)


class TestRoleRules:
    async def test_membership_gives_and_takes_the_mapped_roles(
        self, idp: IdP, northwind: Directory, tokens: dict[str, str]
    ) -> None:
        admins = unique("Admins ")
        resp = await _set_rules(
            idp, tokens["nadia"], [{"group": admins, "roles": ["partner_admin"]}]
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["rules"] == [{"group": admins, "roles": ["partner_admin"]}]
        user = await northwind.create_user()
        assert await _roles(northwind, user["id"]) == ["member"]
        group = await _group(northwind, admins, [user["id"]])
        assert await _roles(northwind, user["id"]) == ["member", "partner_admin"]
        people = (await admin_call(idp, tokens["nadia"], "GET", "/people")).json()
        assert next(p for p in people if p["id"] == user["id"])["roles"] == [
            "member",
            "partner_admin",
        ]
        leave = {"op": "remove", "path": f'members[value eq "{user["id"]}"]'}
        assert (await northwind.patch("Groups", group["id"], leave)).status_code == 200
        assert await _roles(northwind, user["id"]) == ["member"]
        join = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
        await northwind.patch("Groups", group["id"], join)
        assert await _roles(northwind, user["id"]) == ["member", "partner_admin"]
        rename = {"op": "replace", "path": "displayName", "value": unique("Plain ")}
        await northwind.patch("Groups", group["id"], rename)
        assert await _roles(northwind, user["id"]) == ["member"]
        await northwind.patch(
            "Groups", group["id"], {"op": "replace", "path": "displayName", "value": admins}
        )
        assert await _roles(northwind, user["id"]) == ["member", "partner_admin"]
        await _set_rules(idp, tokens["nadia"], [])  # a rule withdrawn: its roles go
        assert await _roles(northwind, user["id"]) == ["member"]
        await _set_rules(idp, tokens["nadia"], [{"group": admins, "roles": ["partner_admin"]}])
        assert await _roles(northwind, user["id"]) == ["member", "partner_admin"]
        assert (await northwind.call("DELETE", f"/Groups/{group['id']}")).status_code == 204
        assert await _roles(northwind, user["id"]) == ["member"]

    async def test_roles_given_otherwise_stay(
        self, idp: IdP, northwind: Directory, tokens: dict[str, str]
    ) -> None:
        leads = unique("Leads ")
        await _set_rules(idp, tokens["nadia"], [{"group": leads, "roles": ["partner_admin"]}])
        user = await northwind.create_user()
        promoted = await admin_call(
            idp,
            tokens["nadia"],
            "PATCH",
            f"/people/{user['id']}",
            {"roles": ["member", "partner_admin"]},
        )
        assert promoted.status_code == 200, promoted.text
        group = await _group(northwind, leads, [user["id"]])
        assert (await northwind.call("DELETE", f"/Groups/{group['id']}")).status_code == 204
        assert await _roles(northwind, user["id"]) == ["member", "partner_admin"]

    async def test_who_may_set_which_rules(self, idp: IdP, tokens: dict[str, str]) -> None:
        good = [{"group": "Staff", "roles": ["member"]}]
        assert (await _set_rules(idp, tokens["carlos"], good)).status_code == 403
        assert (await _set_rules(idp, tokens["noah"], good)).status_code == 403
        assert (await admin_call(idp, tokens["carlos"], "GET", RULES)).status_code == 403
        operator = [{"group": "Root", "roles": ["operator"]}]
        assert (await _set_rules(idp, tokens["nadia"], operator)).status_code == 422
        assert (await _set_rules(idp, tokens["olivia"], operator)).status_code == 422
        unknown = [{"group": "X", "roles": ["wizard"]}]
        assert (await _set_rules(idp, tokens["nadia"], unknown)).status_code == 422
        by_operator = await _set_rules(idp, tokens["olivia"], good)
        assert by_operator.status_code == 200
        assert by_operator.json() == {"rules": good, "grantable": ["member", "partner_admin"]}
        got = await admin_call(idp, tokens["nadia"], "GET", RULES)
        assert got.json() == {"rules": good, "grantable": ["member", "partner_admin"]}
