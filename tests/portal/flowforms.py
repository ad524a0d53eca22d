"""Reading the flow builder's form as a browser would submit it (plain httpx tests)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx


class _Form(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside = form_id, False
        self.fields: dict[str, str] = {}
        self.select: str | None = None
        self.first: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.select, self.first = a["name"], None
        elif tag == "option" and self.select is not None:
            if self.first is None:
                self.first = a.get("value", "")
                self.fields.setdefault(self.select, self.first)
            if "selected" in a:
                self.fields[self.select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None
        elif tag == "form":
            self.inside = False


def builder_fields(html: str) -> dict[str, str]:
    """The builder's fields as they would be posted (no button: pass ``do`` yourself)."""
    parser = _Form("builder")
    parser.feed(html)
    assert "csrf" in parser.fields, "no builder form on the page"
    return parser.fields


def step_operations(html: str) -> list[str]:
    fields = builder_fields(html)
    return [fields[f"s{i}.op"] for i in range(50) if f"s{i}.op" in fields]


async def press(
    client: httpx.AsyncClient, page: httpx.Response, do: str, **changes: Any
) -> httpx.Response:
    """Press the builder button ``do`` after changing some fields."""
    data = {**builder_fields(page.text), **changes, "do": do}
    return await client.post("/connectors/flows", data=data)
