from contracts.claims import Role
from contracts.v1 import profile as c


async def test_smoke(eco):
    await eco.register("anna", "northwind", Role.MEMBER, Role.PARTNER_ADMIN)
    await eco.register("ben", "contoso")
    await eco.settle()
    view = await eco.call(c.GET_PERSON, "ben", person="anna")
    print(view)
    v = await eco.call(c.UPDATE_PERSON, "anna", person="anna", headline="Cold chain logistics lead",
                       skills=["cold chain", "routing"], visibility={"bio": "private"}, bio="secret")
    print(v)
    print(await eco.call(c.GET_PERSON, "ben", person="anna"))
    print(await eco.call(c.DIRECTORY, "ben", q="logistics"))
    print(await eco.call(c.PERSON_CARD, "ben", person="anna"))
    print(await eco.call(c.UPDATE_COMPANY, "anna", partner="northwind", description="We move cold goods"))
