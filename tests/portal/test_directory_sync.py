"""Directory sync (SCIM) on the team page, over HTTP: a partner admin issues a token (its
secret on that one page only), a real SCIM client uses it, the admin revokes it and maps
groups to roles; members, another company's admin and forms without the CSRF token are
refused, and nothing changes at identity when they are."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

import httpx

from tests.portal.login import SignedIn, csrf_of, sign_in
from tests.portal.mesh import Mesh

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def issued_of(html: str) -> tuple[str, str]:
    """The new token's secret and SCIM base URL as the page shows them."""
    secret = re.search(r'id="scim-secret" class="copy-source" readonly value="([^"]+)"', html)
    url = re.search(r'id="scim-url" class="copy-source" readonly value="([^"]+)"', html)
    assert secret and url, "no new token on the page"
    return unescape(secret.group(1)), unescape(url.group(1))


def token_id_of(html: str, name: str) -> str:
    match = re.search(r'<tr id="scim-token-([0-9a-f]+)"><td data-label="Name">' + name, html)
    assert match, f"token {name} is not listed"
    return match.group(1)


async def scim_users(mesh: Mesh, secret: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(
            f"{mesh.issuer}/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}
        )


async def identity_admin(mesh: Mesh, username: str, path: str) -> Any:
    """What identity itself holds, read with the admin API (not through the portal)."""
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(f"{mesh.issuer}/admin{path}", headers=mesh.bearer(username))
    assert resp.status_code == 200, resp.text
    return resp.json()


async def issue(c: SignedIn, name: str) -> httpx.Response:
    page = await c.get("/team")
    return await c.post("/team/scim/tokens", data={"csrf": csrf_of(page.text), "name": name})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class TestTokens:
    async def test_issue_use_and_revoke(self, mesh: Mesh) -> None:
        name = unique("Entra ID")
        async with sign_in(mesh, "carlos", "/team") as c:
            assert "Directory sync (SCIM)" in c.last_page.text
            assert f"{mesh.issuer}/scim/v2" in c.last_page.text
            made = await issue(c, name)
            assert made.status_code == 200, made.text
            secret, url = issued_of(made.text)
            assert secret.startswith("pmscim_") and url == f"{mesh.issuer}/scim/v2"
            assert made.text.count(secret) == 1
            assert made.headers["cache-control"] == "no-store"  # kept by no cache either
            token_id = token_id_of(made.text, name)
            fresh = made.text.split(f'id="scim-token-{token_id}"')[1].split("</tr>")[0]
            assert '<td data-label="Used"><span class="muted">never' in fresh
            assert (await scim_users(mesh, secret)).status_code == 200
            again = await c.get("/team")
            assert secret not in again.text and "scim-secret" not in again.text
            row = again.text.split(f'id="scim-token-{token_id}"')[1].split("</tr>")[0]
            assert "Revoke token" in row
            assert '<td data-label="Used"><time datetime="' in row  # the call above
            revoked = await c.post(
                f"/team/scim/tokens/{token_id}/revoke", data={"csrf": csrf_of(again.text)}
            )
            assert revoked.status_code == 200 and revoked.url.params["done"] == "scim-revoked"
            assert "Directory token revoked" in revoked.text
            row = revoked.text.split(f'id="scim-token-{token_id}"')[1].split("</tr>")[0]
            assert "<strong>revoked</strong>" in row and "Revoke token" not in row
        assert (await scim_users(mesh, secret)).status_code == 401
        listed = await identity_admin(mesh, "carlos", "/partners/contoso/scim-tokens")
        assert next(t for t in listed if t["id"] == token_id)["revoked"] is True

    async def test_a_token_may_expire_and_needs_a_name(self, mesh: Mesh) -> None:
        name = unique("Okta")
        async with sign_in(mesh, "carlos", "/team") as c:
            csrf = csrf_of(c.last_page.text)
            made = await c.post(
                "/team/scim/tokens", data={"csrf": csrf, "name": name, "expires": "30"}
            )
            assert made.status_code == 200
            row = made.text.split(f"{name}</td>")[1].split("</tr>")[0]
            assert '<td data-label="Expires"><time datetime="' in row
            nameless = await c.post("/team/scim/tokens", data={"csrf": csrf, "name": ""})
            assert nameless.status_code == 422
            assert 'role="alert">Not done: Please check: name' in nameless.text
            odd = await c.post(
                "/team/scim/tokens", data={"csrf": csrf, "name": "x", "expires": "7"}
            )
            assert odd.status_code == 422 and "choose when the token expires" in odd.text
            assert 'value="x"' in odd.text  # what was typed stays in the form
            assert "scim-secret" not in nameless.text + odd.text


class TestRules:
    async def test_add_and_remove_group_rules(self, mesh: Mesh) -> None:
        admins, staff = unique("Portal admins"), unique("Staff")
        async with sign_in(mesh, "carlos", "/team") as c:
            page = c.last_page.text
            # the roles identity says this admin may map, as checkboxes
            assert 'name="role" type="checkbox" value="member"' in page
            assert 'name="role" type="checkbox" value="partner_admin"' in page
            assert 'value="operator"' not in page
            csrf = csrf_of(page)
            for group, roles in ((admins, ["partner_admin"]), (staff, ["member"])):
                added = await c.post(
                    "/team/scim/rules", data={"csrf": csrf, "group": group, "role": roles}
                )
                assert added.status_code == 200 and "Group rules saved" in added.text
            assert f'{admins}</td><td data-label="Roles">Partner admin</td>' in added.text
            rules = await identity_admin(mesh, "carlos", "/partners/contoso/scim-role-rules")
            assert {"group": admins, "roles": ["partner_admin"]} in rules["rules"]
            assert {"group": staff, "roles": ["member"]} in rules["rules"]
            gone = await c.post("/team/scim/rules/remove", data={"csrf": csrf, "group": admins})
            assert gone.status_code == 200 and admins not in gone.text and staff in gone.text
            missing = await c.post("/team/scim/rules/remove", data={"csrf": csrf, "group": admins})
            assert missing.status_code == 404 and "no rule for the group" in missing.text
            roleless = await c.post("/team/scim/rules", data={"csrf": csrf, "group": "Nobody"})
            assert roleless.status_code == 422 and "at least one role" in roleless.text
            beyond = await c.post(
                "/team/scim/rules", data={"csrf": csrf, "group": "Root", "role": "operator"}
            )
            assert beyond.status_code == 422 and "cannot give" in beyond.text
        rules = await identity_admin(mesh, "carlos", "/partners/contoso/scim-role-rules")
        assert [r["group"] for r in rules["rules"]] == [staff]


class TestRefusals:
    async def test_a_member_gets_no_section_and_403(self, mesh: Mesh) -> None:
        before = await identity_admin(mesh, "carlos", "/partners/contoso/scim-tokens")
        rules = await identity_admin(mesh, "carlos", "/partners/contoso/scim-role-rules")
        async with sign_in(mesh, "carlos", "/team") as admin:
            kept = unique("kept")
            made = await issue(admin, kept)
            token_id = token_id_of(made.text, kept)
            secret, _ = issued_of(made.text)
        async with sign_in(mesh, "chloe") as c:
            assert "Directory sync" not in c.last_page.text
            assert (await c.get("/team")).status_code == 404
            csrf = csrf_of(c.last_page.text)
            for path, data in (
                ("/team/scim/tokens", {"name": "mine"}),
                (f"/team/scim/tokens/{token_id}/revoke", {}),
                ("/team/scim/rules", {"group": "Everyone", "role": "partner_admin"}),
                ("/team/scim/rules/remove", {"group": "Everyone"}),
            ):
                refused = await c.post(path, data={"csrf": csrf, **data})
                assert refused.status_code == 403, path
                assert "Only the partner admins" in refused.text
        after = await identity_admin(mesh, "carlos", "/partners/contoso/scim-tokens")
        assert len(after) == len(before) + 1  # only the admin's
        assert await identity_admin(mesh, "carlos", "/partners/contoso/scim-role-rules") == rules
        assert (await scim_users(mesh, secret)).status_code == 200

    async def test_an_admin_of_another_company_reaches_only_its_own(self, mesh: Mesh) -> None:
        name = unique("contoso-only")
        async with sign_in(mesh, "carlos", "/team") as c:
            made = await issue(c, name)
            token_id = token_id_of(made.text, name)
            secret, _ = issued_of(made.text)
            group = unique("Contoso admins")
            await c.post(
                "/team/scim/rules",
                data={"csrf": csrf_of(made.text), "group": group, "role": "partner_admin"},
            )
        async with sign_in(mesh, "nadia", "/team") as c:
            page = c.last_page.text
            assert "Directory sync (SCIM)" in page
            assert name not in page and group not in page and token_id not in page
            csrf = csrf_of(page)
            revoke = await c.post(f"/team/scim/tokens/{token_id}/revoke", data={"csrf": csrf})
            assert revoke.status_code == 404 and "Not done:" in revoke.text
            remove = await c.post("/team/scim/rules/remove", data={"csrf": csrf, "group": group})
            assert remove.status_code == 404
        assert (await scim_users(mesh, secret)).status_code == 200
        rules = await identity_admin(mesh, "carlos", "/partners/contoso/scim-role-rules")
        assert {"group": group, "roles": ["partner_admin"]} in rules["rules"]

    async def test_forms_without_the_csrf_token_are_refused(self, mesh: Mesh) -> None:
        name = unique("csrf")
        async with sign_in(mesh, "carlos", "/team") as c:
            made = await issue(c, name)
            token_id = token_id_of(made.text, name)
            secret, _ = issued_of(made.text)
            before = await identity_admin(mesh, "carlos", "/partners/contoso/scim-tokens")
            rules = await identity_admin(mesh, "carlos", "/partners/contoso/scim-role-rules")
            for path, data in (
                ("/team/scim/tokens", {"name": "forged"}),
                (f"/team/scim/tokens/{token_id}/revoke", {}),
                ("/team/scim/rules", {"group": "Forged", "role": "partner_admin"}),
                ("/team/scim/rules/remove", {"group": "Forged"}),
            ):
                for csrf in ({}, {"csrf": "not-the-token"}):
                    refused = await c.post(path, data={**csrf, **data})
                    assert refused.status_code == 403, path
                    assert "Form expired" in refused.text
        assert await identity_admin(mesh, "carlos", "/partners/contoso/scim-tokens") == before
        assert await identity_admin(mesh, "carlos", "/partners/contoso/scim-role-rules") == rules
        assert (await scim_users(mesh, secret)).status_code == 200


class TestOperator:
    async def test_an_operator_manages_any_companys_directory_sync(self, mesh: Mesh) -> None:
        name, group = unique("Okta"), unique("Dispatch leads")
        base = "/operator/partners/northwind/scim"
        async with sign_in(mesh, "olivia", "/operator") as c:
            assert f'href="{base}"' in c.last_page.text
            page = await c.get(base)
            assert page.status_code == 200
            assert "Directory sync of Northwind Logistics" in page.text
            csrf = csrf_of(page.text)
            made = await c.post(f"{base}/tokens", data={"csrf": csrf, "name": name})
            assert made.status_code == 200
            secret, _ = issued_of(made.text)
            token_id = token_id_of(made.text, name)
            assert (await scim_users(mesh, secret)).status_code == 200
            added = await c.post(
                f"{base}/rules", data={"csrf": csrf, "group": group, "role": "partner_admin"}
            )
            assert added.status_code == 200 and str(added.url).startswith(mesh.portal_url + base)
            revoked = await c.post(f"{base}/tokens/{token_id}/revoke", data={"csrf": csrf})
            assert revoked.status_code == 200 and "Directory token revoked" in revoked.text
            gone = await c.post(f"{base}/rules/remove", data={"csrf": csrf, "group": group})
            assert gone.status_code == 200 and group not in gone.text
            missing = await c.get("/operator/partners/no-such-company/scim")
            assert missing.status_code == 404
        assert (await scim_users(mesh, secret)).status_code == 401
        rules = await identity_admin(mesh, "nadia", "/partners/northwind/scim-role-rules")
        assert group not in [r["group"] for r in rules["rules"]]

    async def test_partner_admins_do_not_get_the_operators_pages(self, mesh: Mesh) -> None:
        before = await identity_admin(mesh, "nadia", "/partners/northwind/scim-tokens")
        async with sign_in(mesh, "carlos") as c:
            csrf = csrf_of(c.last_page.text)
            for own in ("northwind", "contoso"):  # another company's, and even its own
                base = f"/operator/partners/{own}/scim"
                assert (await c.get(base)).status_code == 403
                made = await c.post(f"{base}/tokens", data={"csrf": csrf, "name": "sneaky"})
                assert made.status_code == 403 and "Only operators" in made.text
                rule = {"csrf": csrf, "group": "Sneaky", "role": "partner_admin"}
                assert (await c.post(f"{base}/rules", data=rule)).status_code == 403
        assert await identity_admin(mesh, "nadia", "/partners/northwind/scim-tokens") == before
