"""Admin API of the second-factor policy: the ecosystem's and each partner's.

``GET {iss}/admin/second-factor`` → ``{"second_factor": …, "partners": {slug: …}}``;
``PUT {iss}/admin/second-factor`` ``{"second_factor": "optional" | "required" |
"passkeys_only"}``; ``PUT {iss}/admin/partners/{slug}/second-factor``
``{"second_factor": … | null}`` (null: as the ecosystem). A partner's policy may only
be stricter than its ecosystem's (422 otherwise). Operators of the ecosystem only, as
every other admin route (:func:`identity.http.admin.check_admin`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from pydantic import BaseModel

from identity.domain import factors
from identity.http.admin import check_admin
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store.transaction import Tx
from mesh.tokens import bearer

router = APIRouter(prefix="/eco/{eco}/admin", tags=["admin"])


class EcosystemPolicyIn(BaseModel):
    second_factor: str


class PartnerPolicyIn(BaseModel):
    second_factor: str | None = None


async def _as_operator(
    request: Request, rt: IdentityRuntime, eco: str, fn: Callable[[Tx, str], None]
) -> dict[str, object]:
    token = bearer(request.headers.get("authorization"))

    def work(tx: Tx) -> dict[str, object]:
        actor = check_admin(rt, tx, eco, token)
        fn(tx, actor)
        return factors.policies(tx, eco)

    result: dict[str, object] = await rt.tx(work)
    if request.method != "GET":
        rt.rows.forget(eco)
    return result


@router.get("/second-factor")
async def get_policy(request: Request, eco: str, rt: RuntimeDep) -> dict[str, object]:
    return await _as_operator(request, rt, eco, lambda tx, actor: None)


@router.put("/second-factor")
async def set_policy(
    request: Request, eco: str, body: EcosystemPolicyIn, rt: RuntimeDep
) -> dict[str, object]:
    def work(tx: Tx, actor: str) -> None:
        factors.set_ecosystem_policy(tx, eco, body.second_factor, actor)

    return await _as_operator(request, rt, eco, work)


@router.put("/partners/{slug}/second-factor")
async def set_partner_policy(
    request: Request, eco: str, slug: str, body: PartnerPolicyIn, rt: RuntimeDep
) -> dict[str, object]:
    def work(tx: Tx, actor: str) -> None:
        factors.set_partner_policy(tx, eco, slug, body.second_factor, actor)

    return await _as_operator(request, rt, eco, work)
