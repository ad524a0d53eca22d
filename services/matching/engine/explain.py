"""Why a pair matched: the fields, terms and taxonomy concepts both sides share.

Each reason also reads as a sentence built from the words people wrote (never
stems or concept keys): "Bob offers cargo transport, which you need (freight
forwarding)", "You both write about cold chain compliance", "You share contacts
with Bob".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from services.matching.engine.expert import Expert
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Profile, ReasonPart

MAX_REASONS = 8


def _features(ix: MatchIndex, phrases: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for phrase in phrases:
        for key, words in ix.featuriser.phrase(phrase):
            if key not in ix.vec.dropped and words not in out[key]:
                out[key].append(words)
    return out


def _matches(
    ix: MatchIndex,
    kind: str,
    a_fields: dict[str, tuple[str, ...]],
    b_fields: dict[str, tuple[str, ...]],
) -> list[ReasonPart]:
    out = []
    for fa, phrases_a in a_fields.items():
        feats_a = _features(ix, phrases_a)
        for fb, phrases_b in b_fields.items():
            feats_b = _features(ix, phrases_b)
            for key in feats_a.keys() & feats_b.keys():
                col = ix.vec.vocab.get(key)
                weight = ix.vec.idf[col] if col is not None else 1.0
                if key[0] == "t":
                    weight *= ix.w.term
                out.append(
                    ReasonPart(
                        kind,
                        fa,
                        fb,
                        key[2:] if key[0] == "c" else None,
                        tuple(feats_a[key]),
                        tuple(feats_b[key]),
                        round(weight, 3),
                    )
                )
    return out


def explain(ix: MatchIndex, a: str, b: str, social: float = 0.0) -> list[ReasonPart]:
    """The reasons ``b`` suits ``a``, strongest first."""
    pa, pb = ix.profile(a), ix.profile(b)
    if pa is None or pb is None:
        return []
    return explain_pair(ix, pa, pb, social)


def explain_pair(ix: MatchIndex, pa: Profile, pb: Profile, social: float = 0.0) -> list[ReasonPart]:
    """The reasons ``pb`` suits ``pa`` in ``ix``'s vocabulary (``pa`` need not be in it)."""
    reasons = _matches(ix, "need_offer", {"needs": pa.needs}, _offers(pb))
    reasons += _matches(ix, "offer_need", _offers(pa), {"needs": pb.needs, "asked": pb.asked})
    reasons += _matches(
        ix,
        "interest",
        {"interests": pa.interests, "skills": pa.skills},
        {"interests": pb.interests, "skills": pb.skills},
    )
    reasons.sort(key=lambda r: (-r.weight, r.kind))
    reasons = reasons[:MAX_REASONS]
    reasons += _shared(ix, "region", "regions", pa, pb) + _shared(
        ix, "industry", "industries", pa, pb
    )
    if social > 0:
        reasons.append(ReasonPart("social", "contacts", "contacts", None, (), (), round(social, 3)))
    name = pb.name or "they"
    return [replace(r, text=sentence(r, name)) for r in reasons]


def _words(terms: tuple[str, ...]) -> str:
    shown = list(terms[:3])
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def sentence(r: ReasonPart, name: str) -> str:
    """One reason in plain words, from the wording of the people themselves."""
    a, b = _words(r.terms_a) if r.terms_a else "", _words(r.terms_b) if r.terms_b else ""
    also = f" ({a})" if a and a != b else ""
    if r.kind == "need_offer":
        if r.field_b == "helped":
            return f"{name} has helped others with {b}, which you need{also}"
        return f"{name} offers {b}, which you need{also}"
    if r.kind == "offer_need":
        theirs = f" ({b})" if b and a != b else ""
        if r.field_b == "asked":
            return f"You offer {a}, which {name} asked about{theirs}"
        return f"You offer {a}, which {name} needs{theirs}"
    if r.kind == "interest":
        return f"You both write about {b}{also}"
    if r.kind == "region":
        return f"You are both in {b}"
    if r.kind == "industry":
        return f"You both work in {b}"
    return f"You share contacts with {name}"


def _offers(p: Profile) -> dict[str, tuple[str, ...]]:
    return {"offers": p.offers, "skills": p.skills, "helped": p.helped}


def _shared(ix: MatchIndex, kind: str, fld: str, pa: Profile, pb: Profile) -> list[ReasonPart]:
    canon = ix.featuriser.region if kind == "region" else ix.featuriser.industry
    mine = {canon(x): x for x in getattr(pa, fld)}
    theirs = {canon(x): x for x in getattr(pb, fld)}
    common = sorted(mine.keys() & theirs.keys())
    if not common:
        return []
    return [
        ReasonPart(
            kind,
            fld,
            fld,
            None,
            tuple(mine[c] for c in common),
            tuple(theirs[c] for c in common),
            1.0,
        )
    ]


def expert_reasons(ix: MatchIndex, text: str, who: Expert) -> list[str]:
    """Why ``who`` may help with ``text``, in words both sides wrote (strongest first)."""
    p = ix.profile(who.id)
    if p is None:
        return []
    need = _features(ix, (text,))
    name = p.name or "They"
    out = []
    for fields, said in (
        ((*p.offers, *p.skills), "{name} offers {words}, which you need"),
        (p.helped, "{name} has helped others with {words}"),
        ((*p.interests, *p.needs, *p.asked), "{name} writes about {words}"),
    ):
        theirs = _features(ix, fields)
        shared = sorted(need.keys() & theirs.keys(), key=lambda k: (-_idf(ix, k), k))[:3]
        if shared:
            words = _words(tuple(theirs[k][0] for k in shared))
            out.append(said.format(name=name, words=words))
    if who.helped >= 0.5:
        out.append(f"{name} has been helping others lately")
    if who.reciprocity >= 1:
        out.append(f"You helped {name} before")
    return out


def _idf(ix: MatchIndex, key: str) -> float:
    col = ix.vec.vocab.get(key)
    return ix.vec.idf[col] if col is not None else 0.0
