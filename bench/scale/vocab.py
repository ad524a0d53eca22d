"""Realistic, deterministic text for a large ecosystem: trades, regions, products, sentences.

Sentences are composed from templates filled with a vocabulary of trades, products,
regions and needs, so the corpus has the skew of real writing (a few frequent words,
a long tail of rarer ones) without being lorem ipsum. Everything is drawn from a
``random.Random`` the caller seeds, so the same seed gives the same text.
"""

from __future__ import annotations

import random

TRADES = (
    "cold chain logistics",
    "injection moulding",
    "CNC machining",
    "demand forecasting",
    "customs brokerage",
    "contract packaging",
    "freight forwarding",
    "sheet metal forming",
    "industrial coatings",
    "warehouse automation",
    "battery recycling",
    "precision casting",
    "food safety auditing",
    "supplier quality",
    "lean manufacturing",
    "route optimisation",
    "predictive maintenance",
    "additive manufacturing",
    "bonded warehousing",
    "spare parts",
    "pallet pooling",
    "last mile delivery",
    "cross docking",
    "export finance",
    "embedded firmware",
    "machine vision",
    "PLC programming",
    "hydraulic systems",
    "textile dyeing",
    "cocoa sourcing",
    "coffee roasting",
    "solar installation",
    "heat pump servicing",
    "carbon accounting",
    "ERP integration",
    "EDI onboarding",
    "tender management",
    "trade compliance",
    "reverse logistics",
    "cleanroom assembly",
)
PRODUCTS = (
    "reefer containers",
    "stainless fittings",
    "servo drives",
    "corrugated boxes",
    "forklift batteries",
    "LED drivers",
    "gearboxes",
    "conveyor belts",
    "sensor modules",
    "aluminium extrusions",
    "pharmaceutical vials",
    "green coffee",
    "cocoa butter",
    "espresso machines",
    "grinders",
    "PET preforms",
    "glass bottles",
    "circuit boards",
    "heat exchangers",
    "solar inverters",
    "bearings",
    "welding wire",
    "label printers",
    "cold rooms",
    "pallet racking",
    "cable harnesses",
    "filter cartridges",
    "fasteners",
)
REGIONS = (
    "Nordics",
    "Benelux",
    "Iberia",
    "Baltics",
    "Bavaria",
    "Lombardy",
    "Silesia",
    "Flanders",
    "Rhône-Alpes",
    "Andalusia",
    "Scotland",
    "Ireland",
    "Ontario",
    "Quebec",
    "Texas",
    "Ohio",
    "Minas Gerais",
    "Gujarat",
    "Kenya",
    "Vietnam",
    "Anatolia",
    "Moravia",
)
INDUSTRIES = (
    "automotive",
    "food and beverage",
    "pharmaceuticals",
    "retail",
    "energy",
    "aerospace",
    "agriculture",
    "chemicals",
    "electronics",
    "textiles",
    "construction",
    "healthcare",
)
LANGUAGES = ("English", "German", "French", "Spanish", "Dutch", "Polish", "Italian", "Swedish")
PORTS = ("Rotterdam", "Antwerp", "Hamburg", "Gdańsk", "Valencia", "Genoa", "Le Havre", "Koper")
FIRST = (
    "Nadia",
    "Carlos",
    "Fatima",
    "Olivia",
    "Jonas",
    "Ingrid",
    "Mateo",
    "Aisha",
    "Pieter",
    "Lucia",
    "Kenji",
    "Amara",
    "Tomasz",
    "Sofia",
    "Rahul",
    "Elif",
    "Bruno",
    "Hana",
    "Marek",
    "Chloé",
    "Dmitri",
    "Yara",
    "Lars",
    "Zanele",
    "Henrik",
    "Ana",
    "Felix",
    "Mei",
    "Omar",
)
LAST = (
    "Berg",
    "Costa",
    "Haddad",
    "Nowak",
    "Jensen",
    "Rossi",
    "Okafor",
    "Schmidt",
    "Dubois",
    "García",
    "Tanaka",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novák",
    "Silva",
    "Yilmaz",
    "Andersen",
    "Fischer",
    "Mensah",
    "Petrov",
    "Van Dijk",
    "Keller",
    "Singh",
    "Romero",
)
COMPANY_WORDS = (
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Adatum",
    "Litware",
    "Proseware",
    "Wingtip",
    "Woodgrove",
    "Alpine",
    "Harbour",
    "Meridian",
    "Summit",
    "Granite",
    "Cobalt",
)
COMPANY_KINDS = ("Logistics", "Industries", "Foods", "Systems", "Components", "Trading")
TEMPLATES = (
    "We are looking for a partner in {trade} for {product} shipped to the {region}.",
    "Has anyone compared {trade} providers around {port}? Our {product} volumes doubled.",
    "Our team in {region} offers {trade} with short lead times for {industry} customers.",
    "Lead times for {product} from {region} went up again; {trade} is the bottleneck.",
    "Happy to share what worked for us in {trade}: fewer handovers and one owner per lane.",
    "Does anyone audit {trade} suppliers for {industry}? We need a second source by Q3.",
    "The {industry} buyers in {region} ask for certified {product} and traceable batches.",
    "We moved our {product} through {port} and cut dwell time by two days.",
    "Is {trade} worth doing in-house at our size, or should we partner with a specialist?",
    "Thanks, the checklist for {trade} saved us a week on the {product} tender.",
    "Quality escapes on {product} dropped once {trade} moved closer to the line.",
    "Pricing for {product} in the {region} is volatile; hedging helped our {industry} clients.",
)


def name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def company_name(rng: random.Random, i: int) -> str:
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {i}"


def sentence(rng: random.Random) -> str:
    return rng.choice(TEMPLATES).format(
        trade=_skewed(rng, TRADES),
        product=_skewed(rng, PRODUCTS),
        region=rng.choice(REGIONS),
        port=rng.choice(PORTS),
        industry=rng.choice(INDUSTRIES),
    )


def paragraph(rng: random.Random, low: int = 1, high: int = 4) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(low, high)))


def pick(rng: random.Random, words: tuple[str, ...], low: int, high: int) -> list[str]:
    return sorted({_skewed(rng, words) for _ in range(rng.randint(low, high))})


def _skewed(rng: random.Random, words: tuple[str, ...]) -> str:
    """Zipf-like: the first words are much more frequent than the last."""
    return words[min(len(words) - 1, int(len(words) * rng.random() ** 2.5))]
