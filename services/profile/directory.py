"""The directory: index rows per viewer tier, and search over them.

An entry (person or company) is indexed once per tier with only the fields that
tier may see, so full text, filters and the summaries in results all respect
per-field visibility; each search reads, per entry, the one row of the
viewer's own tier towards it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.profile import DirectoryEntry, DirectoryPage, DirectoryQuery
from services.profile import picture_repository
from services.profile import search_repository as repo
from services.profile.search_repository import SearchSpec, TierDoc
from services.profile.text import index_text, search_tokens
from services.profile.views import company_visible, person_visible, summary_text
from services.profile.visibility import ORDER, Viewer, own_company_tier

PERSON_SEARCHABLE = (
    "headline",
    "bio",
    "skills",
    "needs",
    "offers",
    "interests",
    "industries",
    "regions",
    "languages",
)
COMPANY_SEARCHABLE = (
    "description",
    "capabilities",
    "needs",
    "offers",
    "certifications",
    "industries",
    "regions",
)


def norm(value: str) -> str:
    return " ".join(value.casefold().split())


def _facets(shown: dict[str, Any], skill_field: str) -> list[tuple[str, str]]:
    facets: list[tuple[str, str]] = []
    for facet, field in (("industry", "industries"), ("region", "regions"), ("skill", skill_field)):
        facets.extend((facet, norm(v)) for v in shown.get(field) or [])
    return facets


def _summary(shown: dict[str, Any], headline: str, skill_field: str) -> dict[str, Any]:
    return {
        "summary": shown.get(headline),
        "industries": shown.get("industries") or [],
        "regions": shown.get("regions") or [],
        "skills": shown.get(skill_field) or [],
    }


def person_docs(row: Any) -> list[TierDoc]:
    """A person's index rows, one per viewer tier (bulk loaders build the same rows)."""
    docs = []
    for tier in ORDER:
        shown = person_visible(row, tier)
        text = index_text(row.name, summary_text(shown, PERSON_SEARCHABLE))
        docs.append(
            TierDoc(
                tier.value, text, _summary(shown, "headline", "skills"), _facets(shown, "skills")
            )
        )
    return docs


def company_docs(row: Any) -> list[TierDoc]:
    """A company's index rows, one per viewer tier."""
    docs = []
    for tier in ORDER:
        shown = company_visible(row, tier)
        text = index_text(row.name, summary_text(shown, COMPANY_SEARCHABLE))
        docs.append(
            TierDoc(
                tier.value,
                text,
                _summary(shown, "description", "capabilities"),
                _facets(shown, "capabilities"),
            )
        )
    return docs


async def index_person(session: AsyncSession, row: Any) -> None:
    docs = person_docs(row)
    await repo.replace_entry(session, row.eco, "person", row.person, common(row, row.person), docs)


async def index_company(session: AsyncSession, row: Any) -> None:
    docs = company_docs(row)
    await repo.replace_entry(session, row.eco, "company", row.partner, common(row, None), docs)


def common(row: Any, person: str | None) -> dict[str, Any]:
    """The columns an entry's index rows share, whatever the tier."""
    return {
        "partner": row.partner,
        "person": person,
        "name": row.name,
        "name_key": norm(row.name),
        "verified": bool(row.verified),
        "updated_at": row.updated_at,
    }


async def search(session: AsyncSession, viewer: Viewer, q: DirectoryQuery) -> DirectoryPage:
    facets = [
        (facet, norm(value))
        for facet, value in (("industry", q.industry), ("region", q.region), ("skill", q.skill))
        if value
    ]
    spec = SearchSpec(
        eco=q.eco,
        kind=q.kind,
        viewer=viewer.sub,
        viewer_partner=viewer.partner,
        own_company_tier=own_company_tier(viewer).value,
        tokens=search_tokens(q.q),
        facets=facets,
        partner=q.partner,
        verified=q.verified,
        sort=q.sort,
        offset=(q.page - 1) * q.page_size,
        limit=q.page_size,
    )
    total, exact, rows = await repo.search(session, spec)
    images = await picture_repository.hashes(session, q.eco, q.kind, [r.entry for r in rows])
    entries = [
        DirectoryEntry(
            kind=q.kind,
            id=r.entry,
            name=r.name,
            partner=r.partner,
            verified=bool(r.verified),
            image=images.get(r.entry),
            **r.summary,
        )
        for r in rows
    ]
    return DirectoryPage(
        total=total, total_exact=exact, page=q.page, page_size=q.page_size, entries=entries
    )
