"""A SCIM client written by others (``scim2-client`` on ``scim2-models``, its own httpx2
engine) provisions a partner's people against a real provider: it discovers the
service, creates, filters, patches, deactivates, groups and deletes, checking every
response against the RFCs' models (payloads, status codes, content types)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import AsyncSCIMClient
from scim2_models import (
    Error,
    ListResponse,
    PatchOp,
    PatchOperation,
    SCIMException,
    SearchRequest,
    User,
)

from tests.identity.conftest import IdP
from tests.identity.scim_support import Directory, issue_directory, unique


@pytest.fixture(scope="module")
async def northwind(idp: IdP) -> Directory:
    nadia = (await idp.person_tokens("nadia"))["access_token"]
    return await issue_directory(idp, nadia, "northwind")


@pytest.fixture(scope="module")
async def scim(northwind: Directory) -> AsyncIterator[AsyncSCIMClient]:
    headers = {"Authorization": f"Bearer {northwind.token}"}
    async with httpx2.AsyncClient(base_url=northwind.base + "/", headers=headers) as http:
        client = AsyncSCIMClient(http)
        await client.discover()
        yield client


def _search(filter_text: str, **paging: int) -> SearchRequest[Any]:
    return SearchRequest.model_validate({"filter": filter_text, **paging})


def _user_model(scim: AsyncSCIMClient) -> Any:
    model = scim.get_resource_model("User")
    assert model is not None
    return model


async def test_discovery_describes_users_and_groups(scim: AsyncSCIMClient) -> None:
    assert scim.get_resource_model("User") is not None
    assert scim.get_resource_model("Group") is not None
    config = scim.provider.config if scim.provider else None
    assert config is not None and config.patch and config.patch.supported
    assert config.filter and config.filter.supported and config.etag and config.etag.supported
    assert config.bulk and config.bulk.supported is False


async def test_create_filter_patch_deactivate_delete(scim: AsyncSCIMClient) -> None:
    model = _user_model(scim)
    name = unique("grace") + "@northwind.example"
    created = await scim.create(
        model(
            user_name=name,
            display_name="Grace Hopper",
            name={"givenName": "Grace", "familyName": "Hopper"},
            emails=[{"value": "grace@northwind.example", "type": "work", "primary": True}],
            external_id="okta-42",
            active=True,
        )
    )
    assert isinstance(created, model) and created.id and created.user_name == name
    assert created.meta and created.meta.version

    found = await scim.query(model, query_parameters=_search(f'userName eq "{name}"'))
    assert isinstance(found, ListResponse) and found.total_results == 1
    assert found.resources and found.resources[0].id == created.id
    by_mail = await scim.query(
        model, query_parameters=_search('emails co "grace@north" and active eq true')
    )
    assert isinstance(by_mail, ListResponse)
    assert created.id in {r.id for r in by_mail.resources or []}

    patch: Any = PatchOp[User[Any]].model_validate(
        {
            "Operations": [
                {"op": PatchOperation.Op.replace_, "path": "displayName", "value": "Rear Admiral"},
                {"op": PatchOperation.Op.replace_, "path": "active", "value": False},
            ]
        }
    )
    patched = await scim.modify(model, created.id, patch)
    assert isinstance(patched, model)
    assert patched.display_name == "Rear Admiral" and patched.active is False
    inactive = await scim.query(
        model, query_parameters=_search(f'userName eq "{name}" and active eq false')
    )
    assert isinstance(inactive, ListResponse) and inactive.total_results == 1

    await scim.delete(model, created.id)
    with pytest.raises(SCIMException):
        await scim.query(model, created.id)


async def test_groups_and_paging(scim: AsyncSCIMClient) -> None:
    model = _user_model(scim)
    tag = unique("p")
    ids = []
    for i in range(3):
        made = await scim.create(model(user_name=f"{tag}-{i}@northwind.example"))
        assert isinstance(made, model) and made.id
        ids.append(made.id)
    group_model: Any = scim.get_resource_model("Group")
    assert group_model is not None
    group = await scim.create(
        group_model(display_name=unique("Team "), members=[{"value": ids[0]}])
    )
    assert isinstance(group, group_model) and group.members and group.members[0].value == ids[0]
    page = await scim.query(
        model,
        query_parameters=_search(f'userName sw "{tag}"', startIndex=2, count=2),
    )
    assert isinstance(page, ListResponse)
    assert page.total_results == 3 and page.start_index == 2 and page.items_per_page == 2
    assert [r.id for r in page.resources or []] == ids[1:]


async def test_errors_arrive_as_scim_errors(scim: AsyncSCIMClient) -> None:
    model = _user_model(scim)
    name = unique("dup")
    await scim.create(model(user_name=name))
    error = await scim.create(model(user_name=name), raise_scim_errors=False)
    assert isinstance(error, Error) and error.status == 409 and error.scim_type == "uniqueness"
    bad = await scim.query(
        model, query_parameters=_search('nickName eq "x"'), raise_scim_errors=False
    )
    assert isinstance(bad, Error) and bad.scim_type == "invalidFilter"
