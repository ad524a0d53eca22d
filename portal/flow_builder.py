"""The flow builder's draft: read from the builder's form, changed by one action, turned
into the connector's steps.

The builder keeps no state on the server: every button posts the whole form, which
carries the draft (each step's operation and the source of each of its input fields).
A field's source is a constant typed in, or a field of an earlier step's output as its
operation's output schema declares it (a compensation may also use its own step's
output). The connector checks the result against the operations' schemas when the flow
starts; this module only shapes what the person chose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mesh import safejson

MAX_STEPS = 50
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CONST = "const"


@dataclass
class Call:
    operation: str
    sources: dict[str, str] = field(default_factory=dict)  # field → "const" | "<step>.<field>"
    values: dict[str, str] = field(default_factory=dict)  # field → the constant as typed


@dataclass
class Step:
    name: str
    call: Call
    compensate: Call | None = None


@dataclass
class Draft:
    name: str = ""
    steps: list[Step] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # form field → what is wrong


@dataclass(frozen=True)
class InputField:
    name: str
    schema: dict[str, Any]
    required: bool

    @property
    def kind(self) -> str:
        kind = self.schema.get("type")
        return kind if isinstance(kind, str) else "any"


def input_fields(op: dict[str, Any]) -> list[InputField]:
    """The operation's inputs: its input schema's properties and its path's placeholders."""
    schema = op.get("input_schema") or {}
    found = schema.get("properties")
    props: dict[str, Any] = found if isinstance(found, dict) else {}
    given = schema.get("required")
    listed: list[Any] = given if isinstance(given, list) else []
    required = {r for r in listed if isinstance(r, str)}
    required |= set(PLACEHOLDER.findall(str(op.get("path", ""))))
    names = list(dict.fromkeys([*props, *sorted(required)]))
    return [
        InputField(n, props[n] if isinstance(props.get(n), dict) else {}, n in required)
        for n in names
    ]


def output_fields(op: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, type) of what the operation answers, as its output schema declares it."""
    props = (op.get("output_schema") or {}).get("properties")
    if not isinstance(props, dict):
        return []
    return [
        (n, str(s.get("type") or "any") if isinstance(s, dict) else "any") for n, s in props.items()
    ]


def sources(steps: list[Step], before: int, catalogue: dict[str, dict[str, Any]]) -> list[Any]:
    """(value, label) of the output fields of the steps before index ``before``."""
    found = []
    for step in steps[:before]:
        op = catalogue.get(step.call.operation) or {}
        for name, kind in output_fields(op):
            found.append((f"{step.name}.{name}", f"{step.name} › {name} ({kind})"))
    return found


def _name_for(op_id: str, taken: set[str]) -> str:
    base = op_id.partition(".")[2][:56] or "step"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _read_call(form: Any, prefix: str, op_id: str, catalogue: dict[str, Any]) -> Call:
    call = Call(op_id)
    for f in input_fields(catalogue.get(op_id) or {}):
        source = _text(form, f"{prefix}.{f.name}.src")
        if source:
            call.sources[f.name] = source
            call.values[f.name] = _text(form, f"{prefix}.{f.name}.val")
    return call


def _text(form: Any, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def read(form: Any, catalogue: dict[str, dict[str, Any]]) -> Draft:
    """The draft the form carries; an operation not granted to the person is a problem."""
    draft = Draft(name=_text(form, "name")[:200])
    taken: set[str] = set()
    for i in range(MAX_STEPS):
        op_id = _text(form, f"s{i}.op")
        if not op_id:
            break
        _refuse_ungranted(draft, f"s{i}.op", op_id, catalogue)
        name = _text(form, f"s{i}.name")
        if not SLUG.match(name) or name in taken:
            name = _name_for(op_id, taken)
        taken.add(name)
        step = Step(name, _read_call(form, f"s{i}.in", op_id, catalogue))
        comp = _text(form, f"s{i}.comp")
        if comp:
            _refuse_ungranted(draft, f"s{i}.comp", comp, catalogue)
            step.compensate = _read_call(form, f"s{i}.cin", comp, catalogue)
        draft.steps.append(step)
    return draft


def _refuse_ungranted(draft: Draft, key: str, op_id: str, catalogue: dict[str, Any]) -> None:
    if not (catalogue.get(op_id) or {}).get("granted"):
        draft.problems[key] = f"{op_id} is not an operation granted to your company"


def apply(draft: Draft, action: str, new_op: str, catalogue: dict[str, Any]) -> None:
    """One builder action: ``add``, ``remove:<i>``, ``up:<i>``, ``down:<i>`` (else nothing)."""
    verb, _, where = action.partition(":")
    i = int(where) if where.isdigit() else -1
    steps = draft.steps
    if verb == "add":
        if not (catalogue.get(new_op) or {}).get("granted"):
            _refuse_ungranted(draft, "new_op", new_op or "that", catalogue)
        elif len(steps) >= MAX_STEPS:
            draft.problems["new_op"] = f"a flow has at most {MAX_STEPS} steps"
        else:
            steps.append(Step(_name_for(new_op, {s.name for s in steps}), Call(new_op)))
    elif verb == "remove" and 0 <= i < len(steps):
        del steps[i]
    elif verb == "up" and 0 < i < len(steps):
        steps[i - 1], steps[i] = steps[i], steps[i - 1]
    elif verb == "down" and 0 <= i < len(steps) - 1:
        steps[i], steps[i + 1] = steps[i + 1], steps[i]


def coerce(text: str, kind: str) -> Any:
    """A constant typed in, as the field's type wants it (else as typed: the connector says
    why it does not fit)."""
    try:
        if kind == "integer" and re.fullmatch(r"-?\d{1,18}", text):
            return int(text)
        if kind == "number" and text:
            return float(text) if ("." in text or "e" in text.lower()) else int(text)
        if kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in ("object", "array"):
            parsed = safejson.loads(text)
            if isinstance(parsed, dict if kind == "object" else list):
                return parsed
    except ValueError:
        pass
    return text


def _compile_call(call: Call, catalogue: dict[str, Any]) -> dict[str, Any]:
    kinds = {f.name: f.kind for f in input_fields(catalogue.get(call.operation) or {})}
    data: dict[str, Any] = {}
    for name, source in call.sources.items():
        if source == CONST:
            data[name] = coerce(call.values.get(name, ""), kinds.get(name, "any"))
        else:
            step, _, out = source.partition(".")
            data[name] = f"$steps.{step}.output.{out}"
    return {"operation": call.operation, "input": data}


def compile_steps(draft: Draft, catalogue: dict[str, Any]) -> list[dict[str, Any]]:
    """The connector's ``steps`` of a flow start."""
    out = []
    for step in draft.steps:
        made = {"name": step.name, **_compile_call(step.call, catalogue)}
        if step.compensate is not None:
            made["compensate"] = _compile_call(step.compensate, catalogue)
        out.append(made)
    return out


def place_errors(draft: Draft, errors: Any) -> list[str]:
    """Put the connector's per-field errors on the builder's fields; return the others."""
    rest = []
    for error in errors if isinstance(errors, list) else []:
        loc = error.get("loc") if isinstance(error, dict) else None
        msg = str(error.get("msg", "is not valid")) if isinstance(error, dict) else ""
        if isinstance(loc, list) and len(loc) >= 4 and loc[0] == "steps":
            i, part, name = loc[1], loc[2:-1], loc[-1]
            prefix = "cin" if part == ["compensate", "input"] else "in"
            draft.problems[f"s{i}.{prefix}.{name}"] = msg
        else:
            rest.append(msg or json.dumps(error)[:200])
    return rest
