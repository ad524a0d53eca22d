"""The collaboration and matching services' rows of a generated ecosystem.

Forum posts are Markdown bodies rendered by the service's own renderer (a pool of
distinct bodies, since rendering a million is slow and adds nothing); thread 0 is
the long thread. Notifications reply to people's threads and mention them.
Introductions go through every status; accepted ones connect their two people.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import insert

from bench.scale import vocab
from bench.scale.profile_rows import Batch, person_draws
from bench.scale.shape import ECO, Shape, at, chunked, partner_of, person_id, post_id, thread_id
from contracts.v1.profile import PersonPublic
from services.collaboration import markdown
from services.collaboration import models as cm
from services.matching import models as mm

POOL = 2000
CATEGORIES = ("logistics", "manufacturing", "sourcing", "quality", "energy", "digital")
STATUSES = ("proposed", "approved", "accepted", "declined", "connected", "rejected")


def _bodies(shape: Shape) -> list[tuple[str, str]]:
    rng = shape.rng("bodies")
    out = []
    for _ in range(POOL):
        body = vocab.paragraph(rng, 1, 4)
        if rng.random() < 0.3:
            body += f"\n\n- **{vocab.sentence(rng)}**\n- {vocab.sentence(rng)}"
        out.append((body, markdown.render(body)))
    return out


def thread_of(shape: Shape, n: int) -> int:
    """The thread of post ``n``: the first twentieth all go to the long thread 0."""
    if n < shape.long_thread_posts:
        return 0
    return 1 + n % (shape.threads - 1)


def collaboration_batches(shape: Shape) -> Iterator[Batch]:
    rng = shape.rng("collaboration")
    bodies = _bodies(shape)
    people = (
        {
            "eco": ECO,
            "sub": person_id(i),
            "partner": partner_of(shape, i),
            "handle": person_id(i),
            "name": vocab.name(rng),
            "updated_at": at(i),
        }
        for i in range(shape.people)
    )
    for chunk in chunked(people):
        yield insert(cm.PersonRow), chunk, None
    yield (
        insert(cm.CategoryRow),
        [
            {
                "eco": ECO,
                "slug": s,
                "name": s.title(),
                "created_by": person_id(0),
                "created_at": at(0),
            }
            for s in CATEGORIES
        ],
        None,
    )
    per_thread = [0] * shape.threads
    for n in range(shape.posts):
        per_thread[thread_of(shape, n)] += 1
    span = shape.posts  # one post a second, in id order: the latest are the newest
    threads = []
    for t in range(shape.threads):
        author = rng.randrange(shape.people)
        body, html = bodies[rng.randrange(POOL)]
        threads.append(
            {
                "id": thread_id(t),
                "eco": ECO,
                "category": CATEGORIES[t % len(CATEGORIES)],
                "title": vocab.sentence(rng)[:200],
                "body": body,
                "html": html,
                "author": person_id(author),
                "author_partner": partner_of(shape, author),
                "mentions": [],
                "post_count": per_thread[t],
                "created_at": at(t),
                "last_activity_at": at(span - t),
            }
        )
    for chunk in chunked(iter(threads)):
        yield insert(cm.ThreadRow), chunk, None

    def posts() -> Iterator[dict[str, Any]]:
        for n in range(shape.posts):
            author = rng.randrange(shape.people)
            body, html = bodies[rng.randrange(POOL)]
            yield {
                "id": post_id(n),
                "eco": ECO,
                "thread": thread_id(thread_of(shape, n)),
                "author": person_id(author),
                "author_partner": partner_of(shape, author),
                "body": body,
                "html": html,
                "mentions": [],
                "hidden": rng.random() < 0.002,
                "created_at": at(n),
            }

    for chunk in chunked(posts()):
        yield insert(cm.PostRow), chunk, None
    for chunk in chunked(notifications(shape)):
        yield insert(cm.NotificationRow), chunk, None


def notifications(shape: Shape) -> Iterator[dict[str, Any]]:
    rng = shape.rng("notifications")
    for k in range(shape.people * shape.notifications_per_person):
        n = rng.randrange(shape.posts)
        mention = rng.random() < 0.3
        yield {
            "eco": ECO,
            "recipient": person_id(k % shape.people),
            "kind": "mention" if mention else "reply",
            "action": "mentioned" if mention else "replied",
            "actor": person_id(rng.randrange(shape.people)),
            "content_kind": "post",
            "content_id": post_id(n),
            "thread": thread_id(thread_of(shape, n)),
            "excerpt": vocab.sentence(rng)[:280],
            "read_at": at(n + 60) if rng.random() < 0.5 else None,
            "created_at": at(n),
        }


def introduction_pairs(shape: Shape) -> list[tuple[int, int, str]]:
    rng = shape.rng("introductions")
    out = []
    for _ in range(shape.introductions):
        a = rng.randrange(shape.people)
        b = (a + 1 + rng.randrange(shape.people - 1)) % shape.people
        out.append((a, b, STATUSES[min(len(STATUSES) - 1, int(rng.random() ** 2 * 6))]))
    return out


def connected(shape: Shape) -> list[tuple[int, int]]:
    return [(a, b) for a, b, status in introduction_pairs(shape) if status == "connected"]


def matching_batches(shape: Shape) -> Iterator[Batch]:
    rng = shape.rng("matching")

    def persons() -> Iterator[dict[str, Any]]:
        for i, name, fields, hide_bio, _ in person_draws(shape):
            if hide_bio:  # only what the whole ecosystem sees reaches matching
                fields = {**fields, "bio": ""}
            doc = PersonPublic(
                person=person_id(i), partner=partner_of(shape, i), name=name, **fields
            )
            yield {
                "eco": ECO,
                "person": doc.person,
                "partner": doc.partner,
                "doc": doc.model_dump_json(),
                "updated_at": at(i),
            }

    for chunk in chunked(persons()):
        yield insert(mm.Person), chunk, None

    def intros() -> Iterator[dict[str, Any]]:
        for k, (a, b, status) in enumerate(introduction_pairs(shape)):
            yield {
                "id": f"i_{k:08d}",
                "eco": ECO,
                "a": person_id(a),
                "a_partner": partner_of(shape, a),
                "b": person_id(b),
                "b_partner": partner_of(shape, b),
                "status": status,
                "score": round(rng.random(), 4),
                "proposed_by": person_id(a),
                "note": "",
                "a_accepted": status in ("accepted", "connected"),
                "b_accepted": status == "connected",
                "decline_comment": "",
                "reasons": json.dumps([]),
                "created_at": at(k * 10),
                "updated_at": at(k * 10 + 5),
            }

    for chunk in chunked(intros()):
        yield insert(mm.IntroductionRow), chunk, None
