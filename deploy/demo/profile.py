"""Demo profiles for the ACME Partner Network, seeded through the gateway.

Needs and offers complement each other across partners: Northwind moves goods
and needs forecasts, Contoso makes parts and needs cold-chain logistics,
Fabrikam sells analytics and needs data from the other two.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt

PEOPLE: dict[str, dict[str, Any]] = {
    "olivia": {
        "headline": "Ecosystem operator, ACME Partner Network",
        "bio": "Runs the partner programme: onboarding, partner tiers and the yearly summit.",
        "skills": ["Partner programmes", "Ecosystem strategy"],
        "interests": ["Co-selling", "Partner enablement"],
        "industries": ["Industrial equipment"],
        "regions": ["Europe"],
        "languages": ["English", "French"],
    },
    "bruno": {
        "headline": "Partner broker: I introduce people who should talk",
        "bio": "Fifteen years in supply chain consulting. I verify partners and curate intros.",
        "skills": ["Supply chain consulting", "Partner verification"],
        "interests": ["Cold chain", "Predictive maintenance"],
        "industries": ["Logistics", "Manufacturing"],
        "regions": ["Europe"],
        "languages": ["English", "Portuguese"],
    },
    "nadia": {
        "headline": "Head of cold chain logistics at Northwind",
        "bio": "Runs refrigerated transport and bonded warehousing across the Nordics and Benelux.",
        "skills": ["Cold chain", "Route planning", "Warehousing"],
        "needs": ["Demand forecasting", "Spare parts on short notice"],
        "offers": ["Refrigerated transport", "Cross-docking in Rotterdam"],
        "industries": ["Logistics"],
        "regions": ["Nordics", "Benelux"],
        "languages": ["English", "Norwegian"],
        "links": [{"label": "Northwind", "url": "https://northwind.example"}],
    },
    "noah": {
        "headline": "Customs and fleet telematics, Northwind Logistics",
        "bio": "Keeps trucks moving through customs; wants better ETA predictions.",
        "skills": ["Customs brokerage", "Fleet telematics"],
        "needs": ["ETA prediction models", "Telematics dashboards"],
        "offers": ["Customs clearance", "Fleet sensor data"],
        "industries": ["Logistics"],
        "regions": ["Benelux"],
        "languages": ["English", "Dutch"],
    },
    "carlos": {
        "headline": "Plant director, Contoso Manufacturing",
        "bio": "Injection moulding and CNC machining for automotive and medical devices.",
        "skills": ["Injection moulding", "Lean manufacturing"],
        "needs": ["Cold chain logistics for medical parts", "Predictive maintenance"],
        "offers": ["Contract manufacturing", "Rapid prototyping"],
        "industries": ["Manufacturing"],
        "regions": ["DACH", "Iberia"],
        "languages": ["English", "Spanish", "German"],
    },
    "chloe": {
        "headline": "Quality engineer, Contoso Manufacturing",
        "bio": "ISO 13485 audits, machine sensor data and root cause analysis.",
        "skills": ["Quality assurance", "Root cause analysis"],
        "needs": ["Anomaly detection on sensor data"],
        "offers": ["Machine sensor data", "Supplier audits"],
        "industries": ["Manufacturing"],
        "regions": ["DACH"],
        "languages": ["English", "French"],
    },
    "fatima": {
        "headline": "CEO, Fabrikam Analytics",
        "bio": "We turn operational data into forecasts: demand, maintenance, arrival times.",
        "skills": ["Demand forecasting", "Data strategy"],
        "needs": ["Logistics data partners", "Manufacturing sensor data"],
        "offers": ["Demand forecasting", "Predictive maintenance models"],
        "industries": ["Analytics"],
        "regions": ["Europe"],
        "languages": ["English", "Arabic"],
    },
    "felix": {
        "headline": "Data scientist, Fabrikam Analytics",
        "bio": "Time series, anomaly detection and ETA prediction for fleets.",
        "skills": ["Time series forecasting", "Anomaly detection", "Python"],
        "needs": ["Fleet telematics data"],
        "offers": ["ETA prediction models", "Telematics dashboards"],
        "industries": ["Analytics"],
        "regions": ["Nordics"],
        "languages": ["English", "German"],
    },
}

COMPANIES: dict[str, tuple[str, dict[str, Any]]] = {
    "northwind": (
        "nadia",
        {
            "description": "Northwind Logistics: refrigerated transport, cross-docking and bonded "
            "warehousing between the Nordics and Rotterdam.",
            "capabilities": ["Cold chain", "Cross-docking", "Customs clearance"],
            "needs": ["Demand forecasting", "ETA prediction"],
            "offers": ["Refrigerated transport", "Warehousing"],
            "certifications": ["GDP", "ISO 9001"],
            "industries": ["Logistics"],
            "regions": ["Nordics", "Benelux"],
            "size": "201-1000",
        },
    ),
    "contoso": (
        "carlos",
        {
            "description": "Contoso Manufacturing: injection moulding and CNC machining for "
            "automotive and medical devices.",
            "capabilities": ["Injection moulding", "CNC machining", "Rapid prototyping"],
            "needs": ["Cold chain logistics", "Predictive maintenance"],
            "offers": ["Contract manufacturing", "Machine sensor data"],
            "certifications": ["ISO 13485", "IATF 16949"],
            "industries": ["Manufacturing"],
            "regions": ["DACH", "Iberia"],
            "size": "1000+",
        },
    ),
    "fabrikam": (
        "fatima",
        {
            "description": "Fabrikam Analytics: forecasting and predictive maintenance models "
            "built on partners' operational data.",
            "capabilities": ["Demand forecasting", "Predictive maintenance", "Anomaly detection"],
            "needs": ["Logistics data", "Manufacturing sensor data"],
            "offers": ["Forecasting models", "Telematics dashboards"],
            "certifications": ["ISO 27001"],
            "industries": ["Analytics"],
            "regions": ["Europe"],
            "size": "51-200",
        },
    ),
}

VERIFIED = {"northwind": "Checked trade register and GDP certificate", "contoso": "Site visit"}


def subject(token: str) -> str:
    """The person's id (``sub``) in their own access token."""
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def _ok(response: httpx.Response) -> None:
    if response.status_code != 409:
        response.raise_for_status()


async def seed(api: httpx.AsyncClient, tokens: dict[str, str], eco: str) -> None:
    await seed_profiles(api, tokens, eco, PEOPLE, COMPANIES)
    base = f"/v1/ecosystems/{eco}"
    broker = {"Authorization": f"Bearer {tokens['bruno']}"}
    for partner, note in VERIFIED.items():
        current = await api.get(f"{base}/partners/{partner}/profile", headers=broker)
        _ok(current)
        if not current.json().get("badge", {}).get("verified"):
            path = f"{base}/partners/{partner}/verification"
            _ok(await api.put(path, json={"note": note}, headers=broker))


async def seed_profiles(
    api: httpx.AsyncClient,
    tokens: dict[str, str],
    eco: str,
    people: dict[str, dict[str, Any]],
    companies: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    """Each person's profile (written by that person) and each company's (by its admin)."""
    # A profile is seeded once: a restart (or an upgrade) of the same state keeps what
    # people have written since.
    base = f"/v1/ecosystems/{eco}"
    for username, fields in people.items():
        token = tokens[username]
        auth = {"Authorization": f"Bearer {token}"}
        path = f"{base}/people/{subject(token)}"
        if not await _filled(api, path, auth, "headline"):
            _ok(await api.patch(path, json=fields, headers=auth))
    for partner, (admin, fields) in companies.items():
        auth = {"Authorization": f"Bearer {tokens[admin]}"}
        path = f"{base}/partners/{partner}/profile"
        if not await _filled(api, path, auth, "description"):
            _ok(await api.patch(path, json=fields, headers=auth))


async def _filled(api: httpx.AsyncClient, path: str, auth: dict[str, str], field: str) -> bool:
    current = await api.get(path, headers=auth)
    if current.status_code == 404:  # not there before its first write
        return False
    _ok(current)
    return bool(current.json().get(field))
