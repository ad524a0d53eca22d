"""Why a pair matched: the fields, terms and taxonomy concepts both sides share."""

from __future__ import annotations

from collections import defaultdict

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
    reasons = _matches(ix, "need_offer", {"needs": pa.needs}, _offers(pb))
    reasons += _matches(ix, "offer_need", _offers(pa), {"needs": pb.needs})
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
    return reasons


def _offers(p: Profile) -> dict[str, tuple[str, ...]]:
    return {"offers": p.offers, "skills": p.skills}


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
