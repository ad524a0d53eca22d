"""Markdown to safe HTML, and the mentions a text makes.

Two layers: markdown-it renders CommonMark with raw HTML disabled (so typed tags come
out as text) and refuses dangerous link schemes; nh3 (ammonia) then keeps only an
allow-list of tags, attributes and URL schemes and forces ``rel="nofollow noopener
noreferrer"`` on links. Either layer alone stops the usual payloads; both together
also stop what a future renderer plugin might let through.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.enable("table").enable("strikethrough")

TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow noopener noreferrer"

_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9._-]{0,63})")


def render(source: str) -> str:
    """Sanitised HTML for a Markdown ``source``."""
    return sanitize(_md.render(source))


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags={"script", "style"},
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        strip_comments=True,
    )


def handles(source: str) -> list[str]:
    """The ``@handle`` mentions of a text, in order, without duplicates."""
    seen: dict[str, None] = {}
    for match in _MENTION.finditer(source):
        seen.setdefault(match.group(1).rstrip("._-"), None)
    return [h for h in seen if h]


def excerpt(source: str, limit: int = 280) -> str:
    """A short plain-text preview (Markdown source collapsed to one line)."""
    flat = " ".join(source.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
