"""The flow builder's draft and the step list's wording, without a mesh."""

from __future__ import annotations

from datetime import UTC, datetime

from portal import flow_builder as fb
from portal.flow_view import label, render_steps, took
from tests.support.bombs import BOMBS

CATALOGUE = {
    "a.make": {
        "id": "a.make",
        "granted": True,
        "path": "/make/{sku}",
        "input_schema": {"properties": {"qty": {"type": "integer"}, "meta": {"type": "object"}}},
        "output_schema": {"properties": {"id": {"type": "string"}, "n": {"type": "integer"}}},
    },
    "b.hidden": {"id": "b.hidden", "granted": False, "path": "/x"},
}


class TestDraft:
    def test_inputs_come_from_the_schema_and_the_path(self) -> None:
        fields = fb.input_fields(CATALOGUE["a.make"])
        assert [(f.name, f.kind, f.required) for f in fields] == [
            ("qty", "integer", False),
            ("meta", "object", False),
            ("sku", "any", True),
        ]
        assert fb.input_fields({"input_schema": {"properties": {"x": True}, "required": 3}}) == [
            fb.InputField("x", {}, False)
        ], "odd schemas do not break the builder"

    def test_actions_and_compiling(self) -> None:
        draft = fb.Draft("d")
        for _ in range(2):
            fb.apply(draft, "add", "a.make", CATALOGUE)
        assert [s.name for s in draft.steps] == ["make", "make-2"]
        fb.apply(draft, "add", "b.hidden", CATALOGUE)
        assert "not an operation granted" in draft.problems["new_op"] and len(draft.steps) == 2
        for nonsense in ("up:0", "down:1", "remove:7", "up:99999999999999999999", "shrug"):
            fb.apply(draft, nonsense, "", CATALOGUE)
        assert [s.name for s in draft.steps] == ["make", "make-2"]
        fb.apply(draft, "down:0", "", CATALOGUE)
        assert [s.name for s in draft.steps] == ["make-2", "make"]
        draft.steps[1].call.sources = {"qty": "make-2.n", "sku": fb.CONST, "meta": fb.CONST}
        draft.steps[1].call.values = {"sku": "A-1", "meta": '{"a": 1}'}
        step = fb.compile_steps(draft, CATALOGUE)[1]
        assert step["input"] == {"qty": "$steps.make-2.output.n", "sku": "A-1", "meta": {"a": 1}}

    def test_constants_take_the_fields_type_when_they_can(self) -> None:
        assert fb.coerce("12", "integer") == 12 and fb.coerce("1.5", "number") == 1.5
        assert fb.coerce("true", "boolean") is True and fb.coerce("[1]", "array") == [1]
        assert fb.coerce("twelve", "integer") == "twelve", "left for the connector to refuse"
        assert fb.coerce("{", "object") == "{" and fb.coerce("12", "string") == "12"
        for bomb in BOMBS.values():  # too deep to parse: kept as typed, refused later
            assert fb.coerce(bomb, "object") == bomb and fb.coerce(bomb, "array") == bomb

    def test_the_form_is_read_back_and_forged_operations_are_problems(self) -> None:
        form = {
            "name": "n",
            "s0.op": "a.make",
            "s0.name": "BAD NAME",
            "s0.in.qty.src": "const",
            "s0.in.qty.val": " 3 ",
            "s0.in.unknown.src": "const",
            "s0.comp": "b.hidden",
            "s1.op": "b.hidden",
        }
        draft = fb.read(form, CATALOGUE)
        assert [s.name for s in draft.steps] == ["make", "hidden"]
        assert draft.steps[0].call.values == {"qty": "3"} and draft.steps[0].compensate
        assert set(draft.problems) == {"s0.comp", "s1.op"}

    def test_the_connectors_errors_land_on_their_fields(self) -> None:
        draft = fb.Draft()
        rest = fb.place_errors(
            draft,
            [
                {"loc": ["steps", 1, "input", "qty"], "msg": "expects an integer"},
                {"loc": ["steps", 0, "compensate", "input", "id"], "msg": "is required"},
                {"loc": ["name"], "msg": "is too long"},
                "garbage",
            ],
        )
        assert draft.problems == {"s1.in.qty": "expects an integer", "s0.cin.id": "is required"}
        assert rest[0] == "is too long" and len(rest) == 2


class TestWording:
    def test_status_and_timing(self) -> None:
        assert label({"status": "retrying", "attempts": 2}, "running") == "retrying (attempt 2)"
        assert label({"status": "done"}, "completed") == "succeeded"
        assert label({"status": "pending"}, "compensated") == "not run"
        assert label({"status": "pending"}, "running") == "pending"
        now = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
        assert took("2026-01-01T00:00:09.5", "2026-01-01T00:00:09.62", now) == "120 ms"
        assert took("2026-01-01T00:00:05Z", None, now) == "5.0 s", "while it runs"
        assert took(None, None, now) == "" and took("nonsense", None, now) == ""

    def test_what_back_ends_say_is_escaped_in_the_step_list(self) -> None:
        flow = {
            "status": "failed",
            "steps": [
                {
                    "name": "x",
                    "status": "failed",
                    "operation": "a.make",
                    "error": "<b>boom</b>",
                    "output": {"k": "<i>"},
                }
            ],
        }
        html = render_steps(flow, {"a": "<A&Co>"})
        assert "<b>" not in html and "<i>" not in html and "<A&Co>" not in html
        assert "&lt;b&gt;boom&lt;/b&gt;" in html and "&lt;A&amp;Co&gt;" in html
