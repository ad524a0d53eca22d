"""Onboarding through the admin API: partner admins invite people into their own company,
change roles and suspend; operators add a company with its first admin in one step.
Every refusal is tried as carefully as what is allowed."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

import httpx
import pytest

from identity.cli.devclient import login
from tests.identity.conftest import CLI_REDIRECT, IdP

PASSWORD = "onboarded-password-1"


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """acme is the platform ecosystem here, so a second ecosystem can be created."""
    return {"platform_ecosystem": "acme"}


@pytest.fixture(scope="module")
async def tokens(idp: IdP) -> dict[str, str]:
    """Access tokens of the operator, two partner admins and a member (all scopes asked)."""
    names = ("olivia", "nadia", "carlos", "noah")
    return {n: (await idp.person_tokens(n))["access_token"] for n in names}


def _hidden(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {k: unescape(v) for k, v in found}


async def _admin(
    idp: IdP, token: str, method: str, path: str, body: Any = None, eco: str = "acme"
) -> httpx.Response:
    return await idp.http.request(
        method,
        f"{idp.url}/eco/{eco}/admin{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


async def _people(idp: IdP, token: str) -> dict[str, dict[str, Any]]:
    resp = await _admin(idp, token, "GET", "/people")
    assert resp.status_code == 200, resp.text
    return {p["username"]: p for p in resp.json()}


async def _sign_up(idp: IdP, signup_url: str, username: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(signup_url)
        assert page.status_code == 200, page.text
        form = {**_hidden(page.text), "username": username, "name": username.title()}
        return await browser.post(f"{idp.issuer}/signup", data={**form, "password": PASSWORD})


async def _login(idp: IdP, username: str, eco: str = "acme") -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as browser:
        return await login(
            browser,
            f"{idp.url}/eco/{eco}",
            "mesh-cli",
            username,
            PASSWORD,
            CLI_REDIRECT,
            "openid profile profile:read profile:write",
        )


def _user() -> str:
    return f"u{uuid.uuid4().hex[:8]}"


class TestPartnerAdminInvites:
    async def test_invites_into_own_company_and_the_invitee_joins_it(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        resp = await _admin(
            idp, tokens["nadia"], "POST", "/invitations", {"partner": "northwind", "email": "a@b.c"}
        )
        assert resp.status_code == 201, resp.text
        doc = resp.json()
        assert doc["roles"] == ["member"] and doc["email"] == "a@b.c"
        greeting = await idp.http.get(doc["signup_url"])
        assert "invited to join <strong>Northwind Logistics</strong>" in greeting.text
        assert 'value="a@b.c"' in greeting.text
        name = _user()
        joined = await _sign_up(idp, doc["signup_url"], name)
        assert joined.status_code == 303
        person = (await _people(idp, tokens["nadia"]))[name]
        assert person["partner"] == "northwind" and person["roles"] == ["member"]

    async def test_may_give_its_own_admin_role(self, idp: IdP, tokens: dict[str, str]) -> None:
        body = {"partner": "northwind", "roles": ["partner_admin", "member"]}
        resp = await _admin(idp, tokens["nadia"], "POST", "/invitations", body)
        assert resp.status_code == 201 and resp.json()["roles"] == ["member", "partner_admin"]

    @pytest.mark.parametrize(
        "body",
        [
            {"partner": "contoso"},  # another company
            {"partner": "northwind", "roles": ["operator"]},  # beyond its own roles
            {"partner": "northwind", "roles": ["broker", "member"]},
        ],
    )
    async def test_refused_beyond_its_company_or_roles(
        self, idp: IdP, tokens: dict[str, str], body: dict[str, str] | dict[str, Any]
    ) -> None:
        resp = await _admin(idp, tokens["nadia"], "POST", "/invitations", body)
        assert resp.status_code == 403, resp.text

    async def test_a_member_cannot_invite_list_or_change(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        noah = tokens["noah"]
        invite = await _admin(idp, noah, "POST", "/invitations", {"partner": "northwind"})
        assert invite.status_code == 403
        assert (await _admin(idp, noah, "GET", "/people")).status_code == 403
        me = (await _people(idp, tokens["nadia"]))["noah"]["id"]
        change = await _admin(idp, noah, "PATCH", f"/people/{me}", {"roles": ["partner_admin"]})
        assert change.status_code == 403

    async def test_no_token_and_a_back_end_token_are_refused(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        resp = await idp.http.post(f"{idp.issuer}/admin/invitations", json={"partner": "northwind"})
        assert resp.status_code == 401
        # a partner back-end holds partner_admin and profile:write, but is no person
        backend = (await idp.cc("northwind-backend", "profile:write")).json()["access_token"]
        invite = await _admin(idp, backend, "POST", "/invitations", {"partner": "northwind"})
        assert invite.status_code == 403
        assert (await _admin(idp, backend, "GET", "/people")).status_code == 403


class TestPartnerAdminManages:
    async def test_lists_only_its_own_company(self, idp: IdP, tokens: dict[str, str]) -> None:
        people = await _people(idp, tokens["nadia"])
        assert {p["partner"] for p in people.values()} == {"northwind"}
        assert "noah" in people and "chloe" not in people
        other = await _admin(idp, tokens["nadia"], "GET", "/people?partner=contoso")
        assert other.status_code == 403

    async def test_changes_roles_in_its_company_within_its_own(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        invite = await _admin(
            idp, tokens["nadia"], "POST", "/invitations", {"partner": "northwind"}
        )
        name = _user()
        await _sign_up(idp, invite.json()["signup_url"], name)
        pid = (await _people(idp, tokens["nadia"]))[name]["id"]
        up = await _admin(
            idp, tokens["nadia"], "PATCH", f"/people/{pid}", {"roles": ["member", "partner_admin"]}
        )
        assert up.status_code == 200 and up.json()["roles"] == ["member", "partner_admin"]
        beyond = await _admin(
            idp, tokens["nadia"], "PATCH", f"/people/{pid}", {"roles": ["operator"]}
        )
        assert beyond.status_code == 403
        assert (await _people(idp, tokens["nadia"]))[name]["roles"] == ["member", "partner_admin"]

    async def test_cannot_touch_people_of_another_company(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        chloe = (await _people(idp, tokens["carlos"]))["chloe"]["id"]
        for body in ({"roles": ["member", "partner_admin"]}, {"active": False}):
            resp = await _admin(idp, tokens["nadia"], "PATCH", f"/people/{chloe}", body)
            assert resp.status_code == 403, body
        after = (await _people(idp, tokens["carlos"]))["chloe"]
        assert after["active"] and after["roles"] == ["member"]

    async def test_cannot_suspend_itself(self, idp: IdP, tokens: dict[str, str]) -> None:
        me = (await _people(idp, tokens["nadia"]))["nadia"]["id"]
        resp = await _admin(idp, tokens["nadia"], "PATCH", f"/people/{me}", {"active": False})
        assert resp.status_code == 403


class TestSuspension:
    async def test_suspending_cuts_off_and_reinstating_lets_back_in(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        invite = await _admin(
            idp,
            tokens["carlos"],
            "POST",
            "/invitations",
            {"partner": "contoso", "roles": ["member", "partner_admin"]},
        )
        name = _user()
        await _sign_up(idp, invite.json()["signup_url"], name)
        own = (await _login(idp, name))["access_token"]
        assert (await _admin(idp, own, "GET", "/people")).status_code == 200  # an admin now
        pid = (await _people(idp, tokens["carlos"]))[name]["id"]
        off = await _admin(idp, tokens["carlos"], "PATCH", f"/people/{pid}", {"active": False})
        assert off.status_code == 200 and off.json()["active"] is False
        # the token it held is refused, and it cannot sign in again
        assert (await _admin(idp, own, "GET", "/people")).status_code == 401
        info = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {own}"}
        )
        assert info.status_code == 401
        with pytest.raises(Exception):  # the login helper finds no code: the form refused
            await _login(idp, name)
        on = await _admin(idp, tokens["carlos"], "PATCH", f"/people/{pid}", {"active": True})
        assert on.status_code == 200 and on.json()["active"] is True
        assert (await _login(idp, name))["access_token"]


class TestOperatorOnboarding:
    async def test_adds_a_company_and_its_first_admin_in_one_step(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        slug = f"globex-{uuid.uuid4().hex[:6]}"
        resp = await _admin(
            idp,
            tokens["olivia"],
            "POST",
            "/partners",
            {"slug": slug, "name": "Globex", "first_admin_email": "hank@globex.example"},
        )
        assert resp.status_code == 201, resp.text
        invitation = resp.json()["invitation"]
        assert invitation["roles"] == ["member", "partner_admin"]
        name = _user()
        assert (await _sign_up(idp, invitation["signup_url"], name)).status_code == 303
        hank = (await _people(idp, tokens["olivia"]))[name]
        assert hank["partner"] == slug and "partner_admin" in hank["roles"]
        # the new admin invites a colleague into Globex, and only into Globex
        token = (await _login(idp, name))["access_token"]
        ok = await _admin(idp, token, "POST", "/invitations", {"partner": slug})
        assert ok.status_code == 201
        no = await _admin(idp, token, "POST", "/invitations", {"partner": "northwind"})
        assert no.status_code == 403

    async def test_a_partner_admin_cannot_add_a_company(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        resp = await _admin(
            idp, tokens["nadia"], "POST", "/partners", {"slug": "nope-co", "name": "Nope"}
        )
        assert resp.status_code == 403

    async def test_operators_only_within_their_ecosystem(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        other = f"eco-{uuid.uuid4().hex[:6]}"
        created = await idp.http.post(
            f"{idp.url}/admin/ecosystems",
            json={
                "slug": other,
                "name": "Other brand",
                "partner": {"slug": f"{other}-hq", "name": "Other HQ"},
            },
            headers={"Authorization": f"Bearer {tokens['olivia']}"},
        )
        assert created.status_code == 201, created.text
        body = {"partner": f"{other}-hq", "roles": ["member"]}
        for who in ("olivia", "nadia"):
            resp = await _admin(idp, tokens[who], "POST", "/invitations", body, eco=other)
            assert resp.status_code in (401, 403), (who, resp.text)
            listed = await _admin(idp, tokens[who], "GET", "/people", eco=other)
            assert listed.status_code in (401, 403), (who, listed.text)
