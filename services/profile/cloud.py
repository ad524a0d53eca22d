"""Tag clouds: distinctive terms of what a person or company wrote, as one viewer may see it.

Each public piece of writing (not hidden, not in a workspace) and each
ecosystem-visible profile is one document of the ecosystem corpus. A term's
weight for an owner is ``(1 + ln tf) · (ln((1 + N) / (1 + df)) + 0.1)``: frequent in
the owner's writing, rare in the ecosystem. Phrases (two adjacent content
words) count once they occur at least twice. The corpus holds public documents
only, so its statistics reveal nothing private.

Updates are incremental and state-based: applying a content event replaces
that content's contribution, so re-applying it (a replay) leaves every sum as it
was, and an event older than the stored state is ignored.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.collaboration import ContentData
from contracts.v1.profile import CloudTerm, TagCloud
from services.profile import cloud_repository as repo
from services.profile.text import analyze

IDF_FLOOR = 0.1
PHRASE_MIN_TF = 2


def document_terms(*parts: str) -> list[repo.Term]:
    terms = analyze("\n".join(parts))
    return [(k, terms.surface(k), n) for k, n in terms.counts.items()]


def _owners(author: str, author_partner: str) -> list[tuple[str, str]]:
    return [("person", author), ("company", author_partner)]


async def apply_content(
    session: AsyncSession, eco: str, data: ContentData, event_us: int, hidden: bool = False
) -> bool:
    """Make the stored state of one piece of content match ``data``; False if stale."""
    old = await repo.get_content(session, eco, data.content_id)
    if old is not None and old.event_us > event_us:
        return False
    if old is not None and old.public:
        old_terms = await repo.terms_of(session, eco, data.content_id)
        await repo.add_to_clouds(
            session, eco, _owners(old.author, old.author_partner), old_terms, -1
        )
        await repo.add_to_corpus(session, eco, [k for k, _, _ in old_terms], -1)
    hidden = hidden or data.hidden
    public = not hidden and data.workspace is None
    terms = [] if hidden else document_terms(data.title, data.text)
    await repo.save_content(
        session,
        old is not None,
        eco=eco,
        content_id=data.content_id,
        author=data.author,
        author_partner=data.author_partner,
        workspace=data.workspace,
        hidden=hidden,
        public=public,
        event_us=event_us,
    )
    audience = data.audience_partners if data.workspace is not None else []
    # New content has no audience or terms stored yet: nothing to replace.
    await repo.replace_audience(session, eco, data.content_id, audience, old is not None)
    await repo.replace_terms(session, eco, data.content_id, terms, old is not None)
    if public:
        await repo.add_to_clouds(session, eco, _owners(data.author, data.author_partner), terms, 1)
        await repo.add_to_corpus(session, eco, [k for k, _, _ in terms], 1)
    return True


async def update_profile_corpus(
    session: AsyncSession, eco: str, old_text: str, new_text: str
) -> None:
    """Swap a profile's ecosystem-visible text in the corpus (empty text: no document)."""
    old = set(analyze(old_text).counts) if old_text.strip() else set()
    new = set(analyze(new_text).counts) if new_text.strip() else set()
    if old == new:
        return
    if old:
        await repo.add_to_corpus(session, eco, old, -1)
    if new:
        await repo.add_to_corpus(session, eco, new, 1)


@dataclass
class _Acc:
    tf: int = 0
    posts: int = 0
    surfaces: Counter[str] = field(default_factory=Counter)

    def add(self, tf: int, posts: int, surface: str) -> None:
        self.tf += tf
        self.posts += posts
        self.surfaces[surface] += tf


async def build(
    session: AsyncSession,
    eco: str,
    kind: str,
    owner: str,
    viewer_partner: str | None,
    profile_text: str,
    limit: int,
) -> TagCloud:
    """The cloud of ``owner`` from the writing and profile text this viewer may see."""
    acc: dict[str, _Acc] = {}
    posts = 0
    for row in await repo.cloud_sums(session, eco, kind, owner):
        if row.term == repo.DOCS:
            posts = row.posts
        else:
            acc.setdefault(row.term, _Acc()).add(row.tf, row.posts, row.surface)
    extra = await repo.workspace_terms(session, eco, kind, owner, viewer_partner)
    for row in extra:
        acc.setdefault(row.term, _Acc()).add(row.tf, 1, row.surface)
    posts += len({row.content_id for row in extra})
    for key, surface, n in document_terms(profile_text):
        acc.setdefault(key, _Acc()).add(n, 0, surface)
    dfs = await repo.document_frequencies(session, eco, acc)
    docs = dfs.get(repo.DOCS, 0)
    scored = []
    for key, a in acc.items():
        if a.tf <= 0 or (" " in key and a.tf < PHRASE_MIN_TF):
            continue
        idf = math.log((1 + docs) / (1 + dfs.get(key, 0))) + IDF_FLOOR
        scored.append(((1 + math.log(a.tf)) * max(idf, IDF_FLOOR), key, a))
    scored.sort(key=lambda s: (-s[0], " " not in s[1], s[1]))  # phrases first on ties
    return TagCloud(terms=_pick(scored, limit), posts=posts)


def _pick(scored: list[tuple[float, str, _Acc]], limit: int) -> list[CloudTerm]:
    """The top terms, leaving out single words already shown inside a stronger phrase."""
    covered: set[str] = set()
    chosen: list[tuple[float, str, _Acc]] = []
    for weight, key, a in scored:
        if len(chosen) >= limit:
            break
        if " " not in key and key in covered:
            continue
        covered.update(key.split(" ") if " " in key else ())
        chosen.append((weight, key, a))
    top = chosen[0][0] if chosen else 1.0
    return [
        CloudTerm(term=a.surfaces.most_common(1)[0][0], weight=round(w / top, 4), posts=a.posts)
        for w, _, a in chosen
    ]
