"""Synthetic ecosystems with planted complementary pairs, for tests and benchmarks.

Each planted pair (a, b): b offers what a needs and a offers what b needs, mostly
worded with *different* surface forms of the same taxonomy concepts (the same words
only now and then), in a shared region and industry, each with a random extra need
and offer. Around each pair sit decoys that fool lexical matching: a "mirror" who
needs exactly what a needs in a's own words, a "one-way" who offers what a needs in
a's words but wants nothing a has, and a "far" complement in another region and
industry. Everyone else is background noise with random needs, offers and filler.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from services.matching.engine import taxonomy
from services.matching.engine.model import Profile

NEED_FRAMES = ("looking for {}", "need help with {}", "{} wanted", "searching a partner for {}")
OFFER_FRAMES = ("{}", "we deliver {}", "{} for clients", "proven {} team")
FILLER = "innovative agile global premium trusted modern flexible leading dynamic smart".split()
SAME_WORDS = 0.2  # share of planted offers worded exactly like the need they answer
SYLLABLES = "ka lo mi nu pe ra si to vu xa ze bo du fi gu ho ji ke".split()


@dataclass
class Ecosystem:
    profiles: list[Profile]
    planted: dict[str, str] = field(default_factory=dict)  # person → planted partner


def synthetic_concepts(n: int, seed: int = 0) -> dict[str, tuple[str, tuple[str, ...]]]:
    """A large made-up taxonomy (n concepts, 4 surface forms each) for scale tests."""
    rnd = random.Random(seed)
    words: set[str] = set()
    while len(words) < n * 8:
        words.add("".join(rnd.choice(SYLLABLES) for _ in range(3)))
    pool = sorted(words)
    rnd.shuffle(pool)
    return {
        f"k{i}": (
            f"cat{i % 20}",
            tuple(" ".join(pool[i * 8 + 2 * s : i * 8 + 2 * s + 2]) for s in range(4)),
        )
        for i in range(n)
    }


class Generator:
    def __init__(
        self, seed: int = 0, concepts: dict[str, tuple[str, tuple[str, ...]]] | None = None
    ):
        self.rnd = random.Random(seed)
        self.concepts = concepts if concepts is not None else taxonomy.CONCEPTS
        self.keys = sorted(self.concepts)
        self.regions = [names[0] for names in taxonomy.REGIONS.values()]
        self.industries = [names[0] for names in taxonomy.INDUSTRIES.values()]
        self.n = 0

    def _id(self) -> str:
        self.n += 1
        return f"p{self.n:06d}"

    def surface(self, concept: str, avoid: str | None = None) -> str:
        options = [s for s in self.concepts[concept][1] if s != avoid]
        return self.rnd.choice(options)

    def reword(self, concept: str, surface: str) -> str:
        """Another wording of the concept; now and then the very same words."""
        return surface if self.rnd.random() < SAME_WORDS else self.surface(concept, surface)

    def _noise(self) -> str:
        return self.surface(self.rnd.choice(self.keys))

    def need(self, surface: str) -> str:
        return self.rnd.choice(NEED_FRAMES).format(surface) + self._filler()

    def offer(self, surface: str) -> str:
        return self.rnd.choice(OFFER_FRAMES).format(surface) + self._filler()

    def _filler(self) -> str:
        return " " + self.rnd.choice(FILLER) if self.rnd.random() < 0.5 else ""

    def person(self, partners: int, needs=(), offers=(), region=None, industry=None) -> Profile:  # type: ignore[no-untyped-def]
        r = self.rnd
        return Profile(
            id=self._id(),
            partner=f"partner{r.randrange(partners)}",
            name=f"Person {self.n}",
            needs=tuple(needs) or (self.need(self.surface(r.choice(self.keys))),),
            offers=tuple(offers) or (self.offer(self.surface(r.choice(self.keys))),),
            interests=tuple(self.surface(r.choice(self.keys)) for _ in range(2)),
            regions=(region or r.choice(self.regions),),
            industries=(industry or r.choice(self.industries),),
        )

    def planted_group(self, partners: int) -> tuple[list[Profile], Profile, Profile]:
        r = self.rnd
        c1, c2, c3, c4 = r.sample(self.keys, 4)
        region, industry = r.choice(self.regions), r.choice(self.industries)
        far_region = r.choice([x for x in self.regions if x != region])
        far_industry = r.choice([x for x in self.industries if x != industry])
        s1, s2, s3 = self.surface(c1), self.surface(c2), self.surface(c3)
        a_needs = (self.need(s1), self.need(s2), self.need(self._noise()))
        a_offers = (self.offer(self.reword(c3, s3)), self.offer(self._noise()))
        a = self.person(partners, a_needs, a_offers, region, industry)
        b_offers = (self.offer(self.reword(c1, s1)), self.offer(self.reword(c2, s2)))
        b_needs = (self.need(s3), self.need(self._noise()))
        b = self.person(partners, b_needs, (*b_offers, self.offer(self._noise())), region, industry)
        while b.partner == a.partner:
            b = replace(b, partner=f"partner{r.randrange(partners)}")
        mirror = self.person(partners, a_needs, (self.offer(self.surface(c4)),))
        one_way = self.person(
            partners, (self.need(self.surface(c4)),), (self.offer(s1), self.offer(s2))
        )
        far = self.person(
            partners,
            (self.need(s3),),
            (self.offer(self.surface(c1, s1)),),
            far_region,
            far_industry,
        )
        return [a, b, mirror, one_way, far], a, b


def generate(
    n: int,
    seed: int = 0,
    planted_share: float = 0.25,
    concepts: dict[str, tuple[str, tuple[str, ...]]] | None = None,
) -> Ecosystem:
    """An ecosystem of about ``n`` people; ``planted_share`` of them in planted groups."""
    g = Generator(seed, concepts)
    partners = max(4, n // 25)
    eco = Ecosystem([])
    groups = int(n * planted_share) // 5
    for _ in range(groups):
        members, a, b = g.planted_group(partners)
        eco.profiles.extend(members)
        eco.planted[a.id], eco.planted[b.id] = b.id, a.id
    while len(eco.profiles) < n:
        eco.profiles.append(g.person(partners))
    g.rnd.shuffle(eco.profiles)
    return eco
