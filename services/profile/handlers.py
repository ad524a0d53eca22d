"""NATS edge of the profile service: decode, call the service logic, reply."""

from __future__ import annotations

from contracts.claims import Claims
from contracts.v1 import profile as c
from contracts.v1 import profile_images as pi
from contracts.v1 import system
from mesh.runtime import ServiceRuntime
from mesh.service import Call
from services.profile import events
from services.profile.pictures import Pictures
from services.profile.service import ProfileService


def _claims(call: Call) -> Claims:
    assert call.claims is not None  # every profile operation's policy demands a token
    return call.claims


def register(rt: ServiceRuntime) -> None:
    svc = ProfileService(rt.db, rt.outbox)

    async def echo(call: Call, req: system.EchoRequest) -> system.EchoReply:
        claims = _claims(call)
        return system.EchoReply(
            message=req.message,
            eco=req.eco,
            sub=claims.sub,
            partner=claims.partner,
            client_id=claims.client_id,
            service=rt.name,
            instance=rt.settings.instance,
        )

    async def get_person(call: Call, req: c.PersonRef) -> c.PersonView:
        return await svc.get_person(_claims(call), req)

    async def update_person(call: Call, req: c.PersonPatch) -> c.PersonView:
        return await svc.update_person(_claims(call), req)

    async def person_card(call: Call, req: c.CloudRequest) -> c.Card:
        return await svc.person_card(_claims(call), req)

    async def get_company(call: Call, req: c.CompanyRef) -> c.CompanyView:
        return await svc.get_company(_claims(call), req)

    async def update_company(call: Call, req: c.CompanyPatch) -> c.CompanyView:
        return await svc.update_company(_claims(call), req)

    async def company_card(call: Call, req: c.CompanyCloudRequest) -> c.CompanyCard:
        return await svc.company_card(_claims(call), req)

    async def directory(call: Call, req: c.DirectoryQuery) -> c.DirectoryPage:
        return await svc.search(_claims(call), req)

    async def verify_person(call: Call, req: c.VerifyPerson) -> c.PersonView:
        return await svc.set_person_verified(_claims(call), req, verified=True)

    async def revoke_person(call: Call, req: c.VerifyPerson) -> c.PersonView:
        return await svc.set_person_verified(_claims(call), req, verified=False)

    async def verify_company(call: Call, req: c.VerifyCompany) -> c.CompanyView:
        return await svc.set_company_verified(_claims(call), req, verified=True)

    async def revoke_company(call: Call, req: c.VerifyCompany) -> c.CompanyView:
        return await svc.set_company_verified(_claims(call), req, verified=False)

    async def audit(call: Call, req: c.AuditQuery) -> c.AuditLog:
        return await svc.audit_log(req)

    pictures = Pictures(rt.db)

    async def set_avatar(call: Call, req: pi.AvatarUpload) -> c.PersonView:
        return await pictures.set_avatar(_claims(call), req)

    async def avatar(call: Call, req: c.PersonRef) -> pi.Picture:
        return await pictures.avatar(_claims(call), req)

    async def set_logo(call: Call, req: pi.LogoUpload) -> c.CompanyView:
        return await pictures.set_logo(_claims(call), req)

    async def logo(call: Call, req: c.CompanyRef) -> pi.Picture:
        return await pictures.logo(_claims(call), req)

    rt.endpoint(system.ECHO, echo)
    for op, handler in (
        (c.GET_PERSON, get_person),
        (c.UPDATE_PERSON, update_person),
        (c.PERSON_CARD, person_card),
        (c.GET_COMPANY, get_company),
        (c.UPDATE_COMPANY, update_company),
        (c.COMPANY_CARD, company_card),
        (c.DIRECTORY, directory),
        (c.VERIFY_PERSON, verify_person),
        (c.REVOKE_PERSON, revoke_person),
        (c.VERIFY_COMPANY, verify_company),
        (c.REVOKE_COMPANY, revoke_company),
        (c.AUDIT, audit),
        (pi.SET_AVATAR, set_avatar),
        (pi.GET_AVATAR, avatar),
        (pi.SET_LOGO, set_logo),
        (pi.GET_LOGO, logo),
    ):
        rt.endpoint(op, handler)

    on = events.EventHandlers(svc)
    for declared, on_event in (
        (events.IDENTITY, on.identity),
        (events.MATCHING, on.matching),
        (events.COLLABORATION, on.collaboration),
    ):
        # Tag clouds: a burst of posts is applied a fetched batch per transaction.
        together = declared is events.COLLABORATION
        rt.consume(declared.durable, declared.filter_subjects, on_event, together)
