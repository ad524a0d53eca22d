"""Demo content for the seeded ecosystem, created through the gateway like any client would.

Each module ``deploy/demo/<service>.py`` has
``async def seed(api: httpx.AsyncClient, tokens: dict[str, str], eco: str) -> None``.
"""

ECOSYSTEM = "acme"
PASSWORD = "partnermesh-demo"
PEOPLE = {
    "olivia": ("acme-hq", ["operator", "member"]),
    "bruno": ("acme-hq", ["broker", "member"]),
    "nadia": ("northwind", ["partner_admin", "member"]),
    "noah": ("northwind", ["member"]),
    "carlos": ("contoso", ["partner_admin", "member"]),
    "chloe": ("contoso", ["member"]),
    "fatima": ("fabrikam", ["partner_admin", "member"]),
    "felix": ("fabrikam", ["member"]),
}
# Order matters: profiles first, then what refers to them.
SEED_ORDER = ("profile", "collaboration", "matching", "connector")
