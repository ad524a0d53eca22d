"""Profile rows as contract models, cut to what one viewer tier may see."""

from __future__ import annotations

from typing import Any

from contracts.v1.profile import (
    COMPANY_FIELDS,
    PERSON_FIELDS,
    Badge,
    CompanyPublic,
    CompanyView,
    PersonPublic,
    PersonView,
    Visibility,
)
from services.profile.repository import aware
from services.profile.visibility import allied_fields, visible_fields

# Fields whose words summarise a profile (tag clouds, corpus).
PERSON_TEXT = ("headline", "bio", "skills", "needs", "offers", "interests", "industries")
COMPANY_TEXT = ("description", "capabilities", "needs", "offers", "certifications", "industries")
LIST_DEFAULT = (
    "skills",
    "needs",
    "offers",
    "interests",
    "industries",
    "regions",
    "languages",
    "links",
    "capabilities",
    "certifications",
)


def default_value(name: str) -> Any:
    if name in LIST_DEFAULT:
        return []
    return None if name == "size" else ""


def full_fields(stored: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: stored.get(n, default_value(n)) for n in names}


def default_visibility(names: tuple[str, ...]) -> dict[str, str]:
    return {n: Visibility.ECOSYSTEM.value for n in names}


def badge(row: Any) -> Badge:
    if not row.verified:
        return Badge()
    return Badge(
        verified=True, by=row.verified_by, note=row.verified_note, at=aware(row.verified_at)
    )


def person_visible(row: Any, tier: Visibility) -> dict[str, Any]:
    fields = full_fields(row.fields, PERSON_FIELDS)
    return visible_fields(fields, row.visibility, PERSON_FIELDS, tier)


def company_visible(row: Any, tier: Visibility) -> dict[str, Any]:
    fields = full_fields(row.fields, COMPANY_FIELDS)
    return visible_fields(fields, row.visibility, COMPANY_FIELDS, tier)


def allied_of(row: Any) -> dict[str, bool]:
    return dict(row.allied or {})


def person_allied(row: Any, tier: Visibility) -> dict[str, Any]:
    """What an allied viewer of ``tier`` sees of a person (visible and flagged)."""
    fields = full_fields(row.fields, PERSON_FIELDS)
    return allied_fields(fields, row.visibility, allied_of(row), PERSON_FIELDS, tier)


def company_allied(row: Any, tier: Visibility) -> dict[str, Any]:
    fields = full_fields(row.fields, COMPANY_FIELDS)
    return allied_fields(fields, row.visibility, allied_of(row), COMPANY_FIELDS, tier)


def allied_person_view(
    row: Any, company_name: str | None, tier: Visibility, eco: str, eco_name: str
) -> PersonView:
    """A person as a viewer of an allied ecosystem sees it: flagged, visible fields only."""
    return PersonView(
        person=row.person,
        partner=row.partner,
        company_name=company_name or row.partner,
        name=row.name,
        badge=badge(row),
        updated_at=aware(row.updated_at),
        member_since=aware(row.created_at),
        ecosystem=eco,
        ecosystem_name=eco_name,
        **person_allied(row, tier),
    )


def allied_company_view(row: Any, tier: Visibility, eco: str, eco_name: str) -> CompanyView:
    return CompanyView(
        partner=row.partner,
        name=row.name,
        badge=badge(row),
        updated_at=aware(row.updated_at),
        member_since=aware(row.created_at),
        ecosystem=eco,
        ecosystem_name=eco_name,
        **company_allied(row, tier),
    )


def person_view(row: Any, company_name: str | None, tier: Visibility) -> PersonView:
    return PersonView(
        person=row.person,
        partner=row.partner,
        company_name=company_name or row.partner,
        name=row.name,
        badge=badge(row),
        updated_at=aware(row.updated_at),
        member_since=aware(row.created_at),
        visibility=dict(row.visibility) if tier is Visibility.PRIVATE else None,
        allied=allied_of(row) if tier is Visibility.PRIVATE else None,
        avatar=row.image,
        **person_visible(row, tier),
    )


def company_view(row: Any, tier: Visibility) -> CompanyView:
    return CompanyView(
        partner=row.partner,
        name=row.name,
        badge=badge(row),
        updated_at=aware(row.updated_at),
        member_since=aware(row.created_at),
        visibility=dict(row.visibility) if tier is Visibility.PRIVATE else None,
        allied=allied_of(row) if tier is Visibility.PRIVATE else None,
        logo=row.image,
        **company_visible(row, tier),
    )


def person_public(row: Any) -> PersonPublic:
    shown = person_visible(row, Visibility.ECOSYSTEM)
    shown.pop("links", None)
    flags = allied_of(row)
    return PersonPublic(
        person=row.person,
        partner=row.partner,
        name=row.name,
        verified=bool(row.verified),
        allied_fields=[k for k in shown if flags.get(k)],
        **{k: v for k, v in shown.items() if v is not None},
    )


def company_public(row: Any) -> CompanyPublic:
    shown = company_visible(row, Visibility.ECOSYSTEM)
    flags = allied_of(row)
    return CompanyPublic(
        partner=row.partner,
        name=row.name,
        verified=bool(row.verified),
        allied_fields=[k for k in shown if flags.get(k)],
        **{k: v for k, v in shown.items() if v is not None},
    )


def summary_text(shown: dict[str, Any], names: tuple[str, ...]) -> str:
    """The words of the visible fields among ``names``; list items end like sentences."""
    parts: list[str] = []
    for name in names:
        value = shown.get(name)
        if isinstance(value, list):
            parts.extend(f"{item}." for item in value if isinstance(item, str))
        elif isinstance(value, str) and value:
            parts.append(f"{value}.")
    return "\n".join(parts)


def person_text(row: Any, tier: Visibility) -> str:
    return summary_text(person_visible(row, tier), PERSON_TEXT)


def company_text(row: Any, tier: Visibility) -> str:
    return summary_text(company_visible(row, tier), COMPANY_TEXT)
