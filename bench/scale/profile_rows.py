"""The profile service's rows of a generated ecosystem.

People and companies with realistic fields; their directory index rows built by the
service's own code (``directory.person_docs``/``company_docs``), so search reads
exactly what the service would have written; tag clouds and the corpus from text
analysed by the service's analyser; connections from accepted introductions.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

from sqlalchemy import Executable, insert, text

from bench.scale import vocab
from bench.scale.shape import ECO, Rows, Shape, at, chunked, partner_id, partner_of, person_id
from contracts.v1.profile import COMPANY_FIELDS, PERSON_FIELDS
from services.profile import directory, models
from services.profile import text as text_module
from services.profile.cloud_repository import DOCS
from services.profile.search_repository import TierDoc
from services.profile.text import analyze
from services.profile.views import default_visibility

CLOUD_TERMS = 10  # terms kept per person's cloud (the top of their writing)
FIELD_POOL = 5000  # distinct profiles' fields people share
POOL = 1000  # distinct writings whose analysis people share (analysis is the slow part)
FTS = text("INSERT INTO search_fts (rowid, text) VALUES (:rowid, :text)")

Batch = tuple[Executable, Rows, str | None]  # statement, rows, only on this dialect


def person_fields(rng: random.Random) -> dict[str, Any]:
    return {
        "headline": f"{vocab.pick(rng, vocab.TRADES, 1, 1)[0].capitalize()} for "
        f"{rng.choice(vocab.INDUSTRIES)} in the {rng.choice(vocab.REGIONS)}",
        "bio": vocab.paragraph(rng, 1, 2),
        "skills": vocab.pick(rng, vocab.TRADES, 2, 5),
        "needs": vocab.pick(rng, vocab.PRODUCTS, 1, 3),
        "offers": vocab.pick(rng, vocab.PRODUCTS, 1, 3),
        "interests": vocab.pick(rng, vocab.TRADES, 1, 3),
        "industries": vocab.pick(rng, vocab.INDUSTRIES, 1, 2),
        "regions": vocab.pick(rng, vocab.REGIONS, 1, 2),
        "languages": vocab.pick(rng, vocab.LANGUAGES, 1, 3),
    }


def company_fields(rng: random.Random) -> dict[str, Any]:
    return {
        "description": vocab.paragraph(rng, 2, 3),
        "capabilities": vocab.pick(rng, vocab.TRADES, 2, 6),
        "needs": vocab.pick(rng, vocab.PRODUCTS, 1, 4),
        "offers": vocab.pick(rng, vocab.PRODUCTS, 1, 4),
        "certifications": rng.sample(["ISO 9001", "ISO 14001", "IATF 16949", "BRCGS"], 2),
        "industries": vocab.pick(rng, vocab.INDUSTRIES, 1, 3),
        "regions": vocab.pick(rng, vocab.REGIONS, 1, 3),
        "size": rng.choice(["1-10", "11-50", "51-200", "201-1000"]),
    }


def person_draws(shape: Shape) -> Iterator[tuple[int, str, dict[str, Any], bool, bool]]:
    """(index, name, fields, bio hidden, verified) of every person, the same for every service.

    Fields come from a pool of distinct profiles (text analysis is the slow part of
    indexing, and a pool lets it be done once per distinct text)."""
    rng = shape.rng("persons")
    pool = [person_fields(rng) for _ in range(min(shape.people, FIELD_POOL))]
    for i in range(shape.people):
        name = vocab.name(rng)
        fields = pool[rng.randrange(len(pool))]
        yield i, name, fields, rng.random() < 0.1, rng.random() < 0.2


def analysis_memo() -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A context in which each distinct text is analysed once (the index rows are the same)."""
    cached = functools.lru_cache(maxsize=4 * FIELD_POOL)(text_module.analyze)
    index_text = functools.lru_cache(maxsize=16)(text_module.index_text)

    @contextlib.contextmanager
    def memo() -> Iterator[None]:
        with (
            mock.patch.object(text_module, "analyze", cached),
            mock.patch(f"{directory.__name__}.index_text", index_text),
        ):
            yield

    return memo


def persons(shape: Shape) -> Iterator[dict[str, Any]]:
    for i, name, fields, hide_bio, verified in person_draws(shape):
        visibility = default_visibility(PERSON_FIELDS)
        if hide_bio:
            visibility["bio"] = "connections"
        stamp = at(i)
        yield {
            "eco": ECO,
            "person": person_id(i),
            "partner": partner_of(shape, i),
            "name": name,
            "fields": fields,
            "visibility": visibility,
            "allied": {},
            "verified": verified,
            "verified_note": "",
            "updated_at": stamp,
            "created_at": stamp,
        }


def companies(shape: Shape) -> Iterator[dict[str, Any]]:
    rng = shape.rng("companies")
    for j in range(shape.companies):
        stamp = at(j)
        yield {
            "eco": ECO,
            "partner": partner_id(j),
            "name": vocab.company_name(rng, j),
            "fields": company_fields(rng),
            "visibility": default_visibility(COMPANY_FIELDS),
            "allied": {},
            "verified": rng.random() < 0.3,
            "verified_note": "",
            "updated_at": stamp,
            "created_at": stamp,
        }


def index_rows(chunk: Rows, kind: str, first_id: int) -> tuple[Rows, Rows, Rows]:
    """(search_docs, search_facets, search_fts) rows of ``chunk``, ids from ``first_id``."""
    docs: Rows = []
    facets: Rows = []
    fts: Rows = []
    doc_id = first_id
    for row in chunk:
        entry = SimpleNamespace(**row)
        person = row["person"] if kind == "person" else None
        tiers: list[TierDoc] = (
            directory.person_docs(entry) if kind == "person" else directory.company_docs(entry)
        )
        shared = directory.common(entry, person)
        for doc in tiers:
            docs.append(
                {
                    "id": doc_id,
                    "eco": ECO,
                    "kind": kind,
                    "entry": person or row["partner"],
                    "tier": doc.tier,
                    "text": doc.text,
                    "summary": doc.summary,
                    **shared,
                }
            )
            facets.extend({"doc_id": doc_id, "facet": k, "value": v} for k, v in set(doc.facets))
            fts.append({"rowid": doc_id, "text": doc.text})
            doc_id += 1
    return docs, facets, fts


def clouds(shape: Shape) -> Iterator[Batch]:
    """Each person's and company's tag cloud, and the ecosystem's document frequencies."""
    rng = shape.rng("clouds")
    pool = []
    for _ in range(POOL):
        terms = analyze(vocab.paragraph(rng, 3, 6))
        top = terms.counts.most_common(CLOUD_TERMS)
        pool.append([(k, terms.surface(k), n) for k, n in top])
    df: Counter[str] = Counter()

    def owners() -> Iterator[dict[str, Any]]:
        for kind, count, ident in (
            ("person", shape.people, person_id),
            ("company", shape.companies, partner_id),
        ):
            for i in range(count):
                posts = rng.randint(1, 20)
                terms = pool[rng.randrange(POOL)]
                df.update(k for k, _, _ in terms)
                for k, surface, n in [*terms, (DOCS, "", 1)]:
                    yield {
                        "eco": ECO,
                        "owner_kind": kind,
                        "owner": ident(i),
                        "term": k,
                        "surface": surface,
                        "tf": n * posts,
                        "posts": posts,
                    }

    for chunk in chunked(owners()):
        yield insert(models.cloud_terms), chunk, None
    corpus = [{"eco": ECO, "term": k, "df": n} for k, n in sorted(df.items())]
    corpus.append({"eco": ECO, "term": DOCS, "df": shape.people})
    yield insert(models.corpus_terms), corpus, None


def connections(pairs: list[tuple[int, int]], shape: Shape) -> Iterator[dict[str, Any]]:
    seen: set[tuple[int, int]] = set()
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            if (x, y) not in seen:
                seen.add((x, y))
                yield {
                    "eco": ECO,
                    "person": person_id(x),
                    "other": person_id(y),
                    "other_partner": partner_of(shape, y),
                }


def profile_batches(shape: Shape, connected: list[tuple[int, int]]) -> Iterator[Batch]:
    next_id = 1
    memo = analysis_memo()
    for kind, rows, table in (
        ("person", persons(shape), models.persons),
        ("company", companies(shape), models.companies),
    ):
        for chunk in chunked(rows, 2000):
            yield insert(table), chunk, None
            with memo():
                docs, facets, fts = index_rows(chunk, kind, next_id)
            next_id += len(docs)
            yield insert(models.search_docs), docs, None
            yield insert(models.search_facets), facets, None
            yield FTS, fts, "sqlite"
    yield from clouds(shape)
    for chunk in chunked(connections(connected, shape)):
        yield insert(models.connections), chunk, None
