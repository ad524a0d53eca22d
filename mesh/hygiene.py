"""Text hygiene shared by matching and tag clouds: rendered text, never markup or filler.

``rendered(html)`` gives what a reader sees of a post: tags dropped (the contents of
``script``, ``style`` and the like with them), entities decoded, web addresses removed.
``STOPWORDS`` are English function words and the filler of everyday prose ("really",
"please", "thanks", weekdays): words that say nothing about what anyone needs or offers.
Nothing here knows any particular domain.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_INVISIBLE = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})
_BLOCK = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th"}
    | {"blockquote", "pre", "hr", "table", "section", "article"}
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MARKUP = re.compile(r"<[a-zA-Z/!][^>]*>|&[#a-zA-Z0-9]+;")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def looks_like_markup(text: str) -> bool:
    return bool(_MARKUP.search(text))


def rendered(text: str) -> str:
    """The text a reader sees: markup and its attributes gone, entities decoded, no URLs."""
    if looks_like_markup(text):
        parser = _Text()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    return _URL.sub(" ", text)


STOPWORDS = frozenset(
    """a about above across actually after again against all almost also although always am
    among an and any anybody anyone anything anyway anywhere are aren around as ask asked
    asking at away back be became because become been before being below best better between
    both but by can cannot cant could couldn did didn do does doesn doing don done down
    during each either else enough etc even ever every everyone everything example exactly
    far few find first for found from further get gets getting give given go goes going gone
    good got great had hadn has hasn have haven having he hello her here hers herself hi him
    himself his how however i id if ill im in instead into is isn it its itself ive just keep
    kind know last least less let like likely little lot lots made make makes making many
    may maybe me might mine more most much must my myself need needs never new next nice no
    nor not nothing now of off often oh ok okay on once one ones only or other others
    otherwise ought our ours ourselves out over own perhaps please possible pretty probably
    put quite rather re really regarding right said same say says see seem seems seen
    several shall she should shouldn since so some somebody someone something sometimes
    somewhat still such sure take tell than thank thanks that thats the their theirs them
    themselves then there therefore these they thing things think this those though through
    thus to too took tried try trying two under until up upon us use used uses using usually
    ve very via want wanted wants was wasn way ways we well went were weren what whatever
    when where whether which while who whom whose why will with within without won wonder
    would wouldn yes yet you your yours yourself yourselves
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday
    week weeks day days time times year years""".split()
)
