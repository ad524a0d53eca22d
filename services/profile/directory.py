"""The directory: index rows per viewer tier, and search over them.

An entry (person or company) is indexed once per tier with only the fields that
tier may see, so full text, filters and the summaries in results all respect
per-field visibility; each search reads, per entry, the one row of the
viewer's own tier towards it. Entries that flagged fields "shared with allied
ecosystems" also have allied tiers' rows (flagged and visible fields only), which a
federated search (``allied``) reads for the allies whose terms share that kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.profile import DirectoryEntry, DirectoryPage, DirectoryQuery, Visibility
from services.profile import picture_repository
from services.profile import search_repository as repo
from services.profile.search_repository import SearchSpec, TierDoc
from services.profile.text import index_text, search_tokens
from services.profile.views import (
    allied_of,
    company_allied,
    company_visible,
    person_allied,
    person_visible,
    summary_text,
)
from services.profile.visibility import (
    ALLIED_TIERS,
    ORDER,
    Viewer,
    own_company_tier,
    shares_with_allies,
)

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


def _docs(
    row: Any,
    shown_of: Callable[[Any, Visibility], dict[str, Any]],
    allied_of_tier: Callable[[Any, Visibility], dict[str, Any]],
    searchable: tuple[str, ...],
    headline: str,
    skill_field: str,
) -> list[TierDoc]:
    """An entry's index rows: one per viewer tier of its own ecosystem, and, when it
    flagged a field for allies, one per allied tier with only the flagged fields that
    tier may see (so a search across never matches a field it would not show)."""
    tiers = [(tier.value, shown_of(row, tier)) for tier in ORDER]
    if shares_with_allies(allied_of(row)):
        tiers += [(name, allied_of_tier(row, tier)) for name, tier in ALLIED_TIERS.items()]
    return [
        TierDoc(
            name,
            index_text(row.name, summary_text(shown, searchable)),
            _summary(shown, headline, skill_field),
            _facets(shown, skill_field),
        )
        for name, shown in tiers
    ]


def person_docs(row: Any) -> list[TierDoc]:
    """A person's index rows (bulk loaders build the same rows)."""
    return _docs(row, person_visible, person_allied, PERSON_SEARCHABLE, "headline", "skills")


def company_docs(row: Any) -> list[TierDoc]:
    """A company's index rows."""
    return _docs(
        row, company_visible, company_allied, COMPANY_SEARCHABLE, "description", "capabilities"
    )


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


async def search(
    session: AsyncSession,
    viewer: Viewer,
    q: DirectoryQuery,
    allies: dict[str, str] | None = None,
    own_name: str | None = None,
) -> DirectoryPage:
    """One page of the directory; ``allies`` (ecosystem → brand) are the allied
    ecosystems whose terms share this kind with the viewer's (searched in their allied
    tiers, in the same query as the viewer's own ecosystem)."""
    allies = allies or {}
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
        allied=tuple(sorted(allies)),
    )
    total, exact, rows = await repo.search(session, spec)
    # Pictures of allied entries are not served across: no hash for them.
    images = await picture_repository.hashes(
        session, q.eco, q.kind, [r.entry for r in rows if r.eco == q.eco]
    )
    entries = [
        DirectoryEntry(
            kind=q.kind,
            id=r.entry,
            name=r.name,
            partner=r.partner,
            verified=bool(r.verified),
            image=images.get(r.entry) if r.eco == q.eco else None,
            ecosystem=r.eco,
            ecosystem_name=own_name if r.eco == q.eco else allies.get(r.eco),
            **r.summary,
        )
        for r in rows
    ]
    return DirectoryPage(
        total=total, total_exact=exact, page=q.page, page_size=q.page_size, entries=entries
    )
