"""NATS edge of the profile service: each operation's handler ``fn(claims, req)``."""

from __future__ import annotations

from functools import partial

from contracts.claims import Claims
from contracts.policy import Operation
from contracts.v1 import profile as c
from contracts.v1 import profile_images as pi
from contracts.v1 import system
from mesh.runtime import ServiceRuntime
from mesh.service import Handler
from services.profile import events
from services.profile.allied import AlliedProfiles
from services.profile.pictures import Pictures
from services.profile.service import ProfileService


def register(rt: ServiceRuntime) -> None:
    svc = ProfileService(rt.db, rt.outbox)

    async def echo(claims: Claims, req: system.EchoRequest) -> system.EchoReply:
        return system.EchoReply(
            message=req.message,
            eco=req.eco,
            sub=claims.sub,
            partner=claims.partner,
            client_id=claims.client_id,
            service=rt.name,
            instance=rt.settings.instance,
        )

    allied = AlliedProfiles(rt.db)
    pictures = Pictures(rt.db)
    routes: dict[Operation, Handler] = {
        system.ECHO: echo,
        c.GET_PERSON: svc.get_person,
        c.UPDATE_PERSON: svc.update_person,
        c.PERSON_CARD: svc.person_card,
        c.GET_COMPANY: svc.get_company,
        c.UPDATE_COMPANY: svc.update_company,
        c.COMPANY_CARD: svc.company_card,
        c.DIRECTORY: svc.search,
        c.VERIFY_PERSON: partial(svc.set_person_verified, verified=True),
        c.REVOKE_PERSON: partial(svc.set_person_verified, verified=False),
        c.VERIFY_COMPANY: partial(svc.set_company_verified, verified=True),
        c.REVOKE_COMPANY: partial(svc.set_company_verified, verified=False),
        c.AUDIT: lambda claims, req: svc.audit_log(req),
        c.ALLY_PERSON: allied.person,
        c.ALLY_PERSON_CARD: allied.person_card,
        c.ALLY_COMPANY: allied.company,
        c.ALLY_COMPANY_CARD: allied.company_card,
        pi.SET_AVATAR: pictures.set_avatar,
        pi.GET_AVATAR: pictures.avatar,
        pi.SET_LOGO: pictures.set_logo,
        pi.GET_LOGO: pictures.logo,
    }
    rt.endpoints(routes)

    on = events.EventHandlers(svc)
    for declared, on_event in (
        (events.IDENTITY, on.identity),
        (events.MATCHING, on.matching),
        (events.COLLABORATION, on.collaboration),
    ):
        # Tag clouds: a burst of posts is applied a fetched batch per transaction.
        together = declared is events.COLLABORATION
        rt.consume(declared.durable, declared.filter_subjects, on_event, together)
