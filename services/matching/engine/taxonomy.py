"""The B2B capability taxonomy: concepts, their category and the ways people word them.

A need and an offer match when their words map to the same concept, however each
side phrased it ("ship goods to Poland" ↔ "freight forwarding"). Regions and
industries have their own small synonym tables. This is data, not code: extend it
(or load a deployment's own) without touching the matcher.
"""

from __future__ import annotations

CONCEPTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # concept: (category, surface forms)
    "freight": (
        "logistics",
        (
            "freight forwarding",
            "shipping goods",
            "cargo transport",
            "haulage",
            "international shipping",
        ),
    ),
    "warehousing": (
        "logistics",
        (
            "warehousing",
            "storage space",
            "fulfilment centre",
            "distribution centre",
            "stock keeping",
        ),
    ),
    "last_mile": (
        "logistics",
        ("last mile delivery", "parcel delivery", "courier network", "home delivery"),
    ),
    "cold_chain": (
        "logistics",
        (
            "cold chain",
            "refrigerated transport",
            "temperature controlled logistics",
            "reefer containers",
        ),
    ),
    "customs": (
        "logistics",
        ("customs clearance", "import export paperwork", "customs brokerage", "trade compliance"),
    ),
    "fleet": ("logistics", ("fleet management", "vehicle tracking", "telematics", "truck routing")),
    "cnc": (
        "manufacturing",
        ("cnc machining", "precision milling", "metal cutting", "turned parts"),
    ),
    "injection_molding": (
        "manufacturing",
        ("injection moulding", "plastic parts production", "polymer molding", "moulded components"),
    ),
    "additive": (
        "manufacturing",
        ("3d printing", "additive manufacturing", "rapid prototyping", "printed prototypes"),
    ),
    "pcb": (
        "manufacturing",
        (
            "pcb assembly",
            "circuit board production",
            "electronics manufacturing services",
            "smt assembly",
        ),
    ),
    "sheet_metal": (
        "manufacturing",
        ("sheet metal fabrication", "laser cutting", "metal bending", "welded assemblies"),
    ),
    "quality": (
        "manufacturing",
        ("quality assurance", "iso 9001 audits", "inspection services", "defect testing"),
    ),
    "sourcing": (
        "manufacturing",
        ("component sourcing", "supplier scouting", "procurement of parts", "vendor selection"),
    ),
    "bi": (
        "analytics",
        ("business intelligence", "dashboards", "kpi reporting", "management reporting"),
    ),
    "forecasting": (
        "analytics",
        ("demand forecasting", "sales prediction", "time series models", "predictive planning"),
    ),
    "ml": (
        "analytics",
        ("machine learning", "ai models", "neural networks", "predictive algorithms"),
    ),
    "data_engineering": (
        "analytics",
        ("data pipelines", "etl development", "data warehouse", "data lake engineering"),
    ),
    "data_quality": (
        "analytics",
        ("data cleansing", "master data management", "deduplication of records", "data governance"),
    ),
    "optimisation": (
        "analytics",
        (
            "route optimisation",
            "operations research",
            "scheduling algorithms",
            "linear programming",
        ),
    ),
    "cloud": (
        "software",
        ("cloud hosting", "aws infrastructure", "kubernetes clusters", "managed servers"),
    ),
    "erp": (
        "software",
        (
            "erp integration",
            "sap connectors",
            "enterprise resource planning",
            "odoo implementation",
        ),
    ),
    "api": (
        "software",
        ("api development", "rest interfaces", "system integration", "middleware connectors"),
    ),
    "mobile": (
        "software",
        ("mobile apps", "ios development", "android applications", "smartphone software"),
    ),
    "ecommerce": (
        "software",
        ("online shop", "ecommerce platform", "web store", "shopify development"),
    ),
    "security": (
        "software",
        ("cyber security", "penetration testing", "security audits", "threat monitoring"),
    ),
    "iot": (
        "software",
        ("iot sensors", "connected devices", "industrial internet", "sensor networks"),
    ),
    "marketing": (
        "commercial",
        (
            "digital marketing",
            "lead generation",
            "online advertising",
            "demand generation campaigns",
        ),
    ),
    "sales_channels": (
        "commercial",
        ("distribution partners", "resellers", "channel sales", "dealer network"),
    ),
    "market_entry": (
        "commercial",
        ("market entry", "international expansion", "new country launch", "go to market abroad"),
    ),
    "branding": (
        "commercial",
        ("brand design", "corporate identity", "logo and visual identity", "brand strategy"),
    ),
    "pr": (
        "commercial",
        ("public relations", "press coverage", "media outreach", "communications agency"),
    ),
    "events": (
        "commercial",
        ("trade fairs", "event organisation", "conference booths", "exhibition stands"),
    ),
    "funding": ("finance", ("venture capital", "investors", "seed funding", "growth equity")),
    "trade_finance": (
        "finance",
        ("trade finance", "letters of credit", "invoice factoring", "supply chain financing"),
    ),
    "accounting": (
        "finance",
        ("bookkeeping", "accounting services", "financial statements", "tax filing"),
    ),
    "insurance": (
        "finance",
        ("cargo insurance", "liability cover", "risk insurance", "underwriting"),
    ),
    "grants": (
        "finance",
        ("public grants", "eu subsidies", "research funding programmes", "innovation grants"),
    ),
    "legal": (
        "services",
        ("contract law", "legal advice", "commercial lawyers", "contract drafting"),
    ),
    "gdpr": (
        "services",
        ("gdpr compliance", "data protection", "privacy regulation", "dpo services"),
    ),
    "recruiting": (
        "services",
        ("recruiting", "talent acquisition", "hiring engineers", "headhunting"),
    ),
    "training": (
        "services",
        ("staff training", "workshops", "upskilling programmes", "technical courses"),
    ),
    "translation": (
        "services",
        ("translation services", "localisation", "multilingual content", "interpreters"),
    ),
    "consulting": (
        "services",
        (
            "management consulting",
            "strategy advice",
            "business transformation",
            "process improvement",
        ),
    ),
    "sustainability": (
        "sustainability",
        ("carbon accounting", "co2 footprint", "emissions reporting", "net zero planning"),
    ),
    "recycling": (
        "sustainability",
        ("recycling", "waste management", "circular economy", "material recovery"),
    ),
    "energy": (
        "sustainability",
        (
            "renewable energy",
            "solar installations",
            "energy efficiency",
            "power purchase agreements",
        ),
    ),
    "packaging": (
        "sustainability",
        (
            "sustainable packaging",
            "recyclable boxes",
            "eco friendly wrapping",
            "compostable materials",
        ),
    ),
    "ev_charging": (
        "sustainability",
        (
            "ev charging",
            "electric vehicle chargers",
            "charging stations",
            "e-mobility infrastructure",
        ),
    ),
}

REGIONS: dict[str, tuple[str, ...]] = {
    "dach": ("germany", "austria", "switzerland", "dach"),
    "benelux": ("netherlands", "belgium", "luxembourg", "benelux"),
    "nordics": ("sweden", "norway", "denmark", "finland", "nordics", "scandinavia"),
    "iberia": ("spain", "portugal", "iberia"),
    "france": ("france",),
    "italy": ("italy",),
    "uk_ireland": ("uk", "united kingdom", "ireland", "great britain"),
    "cee": ("poland", "czechia", "hungary", "slovakia", "romania", "cee", "central europe"),
    "north_america": ("usa", "united states", "canada", "north america"),
    "latam": ("brazil", "mexico", "argentina", "latin america"),
    "mena": ("uae", "saudi arabia", "egypt", "middle east"),
    "apac": ("china", "japan", "india", "singapore", "australia", "asia pacific"),
}

INDUSTRIES: dict[str, tuple[str, ...]] = {
    "automotive": ("automotive", "cars", "vehicle industry"),
    "retail": ("retail", "consumer goods", "fmcg"),
    "food": ("food", "food and beverage", "agrifood"),
    "pharma": ("pharma", "life sciences", "healthcare"),
    "energy": ("energy", "utilities"),
    "machinery": ("machinery", "industrial equipment", "engineering"),
    "electronics": ("electronics", "semiconductors"),
    "chemicals": ("chemicals", "materials"),
    "fashion": ("fashion", "apparel", "textiles"),
    "construction": ("construction", "building"),
    "software": ("software", "saas", "it"),
    "finance": ("finance", "banking", "insurance"),
}


def concept_category(concept: str) -> str:
    return CONCEPTS[concept][0] if concept in CONCEPTS else "term"
