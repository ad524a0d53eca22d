"""Rendering helpers for templates: safe Markdown, tag-cloud sizes, dates."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import nh3
from jinja2 import Environment
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
}


def clean(html: str) -> Markup:
    """Sanitise HTML (also what services send): no scripts, no event handlers, no styles."""
    return Markup(  # noqa: S704  (nh3 has just removed everything unsafe)
        nh3.clean(
            html,
            tags=_TAGS,
            attributes={"a": {"href", "title"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer nofollow",
        )
    )


def markdown(text: str) -> Markup:
    return clean(_MD.render(text or ""))


def cloud_size(weight: Any) -> int:
    """A weight in [0, 1] → one of five size classes (styles are classes: the CSP has no inline)."""
    try:
        w = float(weight)
    except (TypeError, ValueError):
        return 1
    return max(1, min(5, 1 + int(w * 4.999)))


def when(value: Any) -> Markup | str:
    """A ``<time>`` in UTC; the portal's script shows it in the viewer's own time zone
    (without script, the UTC time says so)."""
    if isinstance(value, str):
        text: str = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return text
    if isinstance(value, datetime):
        if value.tzinfo is None:  # the services store UTC
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        stamp = value.isoformat(timespec="seconds").replace("+00:00", "Z")
        return Markup('<time datetime="{}">{} UTC</time>').format(
            stamp, value.strftime("%Y-%m-%d %H:%M")
        )
    return ""


TONES = 8


def initials(name: Any) -> str:
    """Up to two capital letters for an avatar: "Noah Nguyen" → "NN", "fabrikam" → "F"."""
    words = [w for w in str(name or "").replace("-", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def tone(key: Any) -> int:
    """A stable colour class (0–7) for an avatar, from the person's or company's id."""
    return zlib.crc32(str(key or "").encode()) % TONES


def highlight(text: str | None, words: Sequence[str]) -> Markup:
    """``text`` escaped, each occurrence of one of ``words`` (any case) in ``<mark>``."""
    if not text:
        return Markup("")
    wanted = sorted({w for w in words if w}, key=len, reverse=True)
    if not wanted:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in wanted), re.IGNORECASE)
    parts: list[Markup] = []
    last = 0
    for found in pattern.finditer(text):
        parts.append(escape(text[last : found.start()]))
        parts.append(Markup("<mark>%s</mark>") % found.group(0))
        last = found.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def install(env: Environment) -> None:
    env.filters["highlight"] = highlight
    env.filters["markdown"] = markdown
    env.filters["clean"] = clean
    env.filters["cloud_size"] = cloud_size
    env.filters["when"] = when
    env.filters["initials"] = initials
    env.filters["tone"] = tone
    env.filters["csv"] = lambda v: ", ".join(v or [])
