"""A flow's steps checked before it starts: their operations granted (across an alliance
too: :func:`granted_operations`), their inputs against the operations' JSON Schemas.

Each step's input is a mapping from the operation's input fields to values: constants,
``"$input.a"`` (the flow's input) or ``"$steps.<step>.output.x"`` (an earlier step's
output). What can be known before anything runs is checked here, field by field:

- every input the operation requires (its schema's ``required``, its path placeholders)
  is mapped;
- a constant or a flow-input value fits the field's schema;
- a reference names a step that runs before (a compensation may also use its own step's
  output) and, where that step's operation declares its output's properties, a field it
  declares, whose declared type fits the field's type (an integer fits a number).

A step may call an operation of an allied ecosystem (``ecosystem``); ``ops`` is keyed by
:func:`op_key`.

Schemas that say nothing (no ``properties``, no ``type``) leave a field unchecked: the
invocation still validates the real input against the schema when the step runs.
"""

from __future__ import annotations

from typing import Any

from referencing.exceptions import Unresolvable
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims
from contracts.v1 import connector as c
from mesh.errors import forbidden, not_found
from services.connector import access, alliances
from services.connector import repository as repo
from services.connector.invocation import validator
from services.connector.models import OperationRow
from services.connector.registry import _PLACEHOLDER

Problem = dict[str, Any]


def op_key(call: c.FlowCall) -> str:
    """A call's operation in ``ops``: ``<operation>``, or ``<eco>/<operation>`` across."""
    return call.operation if call.ecosystem is None else f"{call.ecosystem}/{call.operation}"


ARTICLE = {"integer": "an integer", "object": "an object", "array": "a list"}


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    return {k for k in kind if isinstance(k, str)} if isinstance(kind, list) else set()


def _say(types: set[str]) -> str:
    return " or ".join(ARTICLE.get(t, f"a {t}") for t in sorted(types))


def _fits(source: set[str], target: set[str]) -> bool:
    if not source or not target:
        return True
    return bool(source & target) or ("integer" in source and "number" in target)


def _is_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("$input", "$steps."))


def _output_schema(
    value: str, ops: dict[str, OperationRow], producers: dict[str, str]
) -> tuple[dict[str, Any] | None, str | None]:
    """The declared schema of ``$steps.<step>.output.<path>`` (None: unknown), or an error."""
    parts = value.split(".")
    if len(parts) < 3 or parts[2] != "output":
        return None, f"{value} is not a reference of the form $steps.<step>.output.<field>"
    step = parts[1]
    if step not in producers:
        return None, f"refers to step {step}, which does not run before it"
    schema: dict[str, Any] = ops[producers[step]].output_schema or {}
    for name in parts[3:]:
        props = schema.get("properties")
        if not isinstance(props, dict):
            return None, None
        if name not in props:
            return None, f"{step}'s output ({producers[step]}) has no field {name}"
        schema = props[name] if isinstance(props[name], dict) else {}
    return schema, None


def _flow_input(value: str, flow_input: dict[str, Any]) -> tuple[Any, str | None]:
    current: Any = flow_input
    for name in value.split(".")[1:]:
        if not isinstance(current, dict) or name not in current:
            return None, f"{value}: the flow's input has no {name}"
        current = current[name]
    return current, None


def _fits_field(value: Any, name: str, schema: dict[str, Any]) -> str | None:
    """Validated in the whole input schema (its ``$ref``s resolve there), errors of the
    field only; a reference the schema cannot resolve leaves it to the call."""
    try:
        for e in validator(schema).iter_errors({name: value}):
            if list(e.absolute_path)[:1] == [name]:
                return f"the value {_short(value)} does not fit: {e.message}"
    except Unresolvable:
        return None
    return None


def _check_value(
    value: Any,
    name: str,
    schema: dict[str, Any],
    flow_input: dict[str, Any],
    ops: dict[str, OperationRow],
    producers: dict[str, str],
) -> str | None:
    """Why ``value`` cannot feed the input ``name`` of ``schema`` (None: it can, or unknown)."""
    props = schema.get("properties")
    found = props.get(name) if isinstance(props, dict) else None
    target: dict[str, Any] = found if isinstance(found, dict) else {}
    if isinstance(value, str) and value.startswith("$steps."):
        source, error = _output_schema(value, ops, producers)
        if error or source is None:
            return error
        have, want = _types(source), _types(target)
        if _fits(have, want):
            return None
        shown = value.removeprefix("$steps.").replace(".output.", " › ", 1)
        return f"expects {_say(want)}, but {shown} is {_say(have)}"
    if isinstance(value, str) and value.startswith("$input"):
        value, error = _flow_input(value, flow_input)
        if error:
            return error
    if _has_ref(value):
        return None  # a structure with references inside: checked when the step runs
    return _fits_field(value, name, schema)


def _has_ref(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_ref(v) for v in value)
    return _is_ref(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def check_call(
    call: c.FlowCall,
    loc: list[Any],
    flow_input: dict[str, Any],
    ops: dict[str, OperationRow],
    producers: dict[str, str],
) -> list[Problem]:
    op = ops[op_key(call)]
    schema = op.input_schema or {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    assert isinstance(props, dict)
    problems: list[Problem] = []

    def add(field: str, msg: str) -> None:
        problems.append({"loc": [*loc, "input", field], "msg": msg, "type": "flow_mapping"})

    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    for name in dict.fromkeys([*required, *_PLACEHOLDER.findall(op.path)]):
        if name not in call.input:
            add(name, f"is required by {op.id} and is not mapped")
    for name, value in call.input.items():
        if name not in props and schema.get("additionalProperties") is False:
            add(name, f"is not an input of {op.id}")
            continue
        error = _check_value(value, name, schema, flow_input, ops, producers)
        if error:
            add(name, error)
    return problems


def check_steps(
    steps: list[c.FlowStep], flow_input: dict[str, Any], ops: dict[str, OperationRow]
) -> list[Problem]:
    """Every problem of the steps' mappings, each at its field (``loc``)."""
    problems: list[Problem] = []
    producers: dict[str, str] = {}
    for i, step in enumerate(steps):
        problems += check_call(step, ["steps", i], flow_input, ops, producers)
        mine = {**producers, step.name: op_key(step)}
        if step.compensate is not None:
            loc = ["steps", i, "compensate"]
            problems += check_call(step.compensate, loc, flow_input, ops, mine)
        producers = mine
    return problems


# --- the operations of a flow's steps -------------------------------------------------------


async def granted_operations(
    s: AsyncSession, claims: Claims, req: c.StartFlowRequest
) -> dict[str, OperationRow]:
    """The operations of the steps and compensations: each one the caller's partner owns or
    is granted (404 for one it may not see, 403 for one it sees but is not granted, or
    across an alliance that is not active or whose terms do not allow it)."""
    ops: dict[str, OperationRow] = {}
    calls = [call for st in req.steps for call in (st, st.compensate) if call is not None]
    for call in {op_key(call): call for call in calls}.values():
        if call.ecosystem is not None:
            ops[op_key(call)] = await granted_across(s, claims, req.eco, call)
            continue
        op_id = call.operation
        op = await repo.get_operation(s, req.eco, op_id)
        grants = await repo.list_grants(s, req.eco, "operation", op_id) if op else []
        if op is None or not access.may_see(claims, op, grants):
            raise not_found(f"operation {op_id}")
        if op.partner != claims.partner and not any(
            access.grant_applies(g, claims.partner) for g in grants
        ):
            raise forbidden(f"{op_id} is not granted to your partner")
        ops[op_id] = op
    return ops


async def granted_across(
    s: AsyncSession, claims: Claims, eco: str, call: c.FlowCall
) -> OperationRow:
    """An allied ecosystem's operation granted to the flow's partner of ``eco``, its
    alliance active and its terms allowing the call."""
    assert call.ecosystem is not None
    where, op_id = call.ecosystem, call.operation
    op = await repo.get_operation(s, where, op_id)
    grants = await repo.list_grants(s, where, "operation", op_id) if op else []
    if op is None or not any(access.names(g, claims.partner, eco) for g in grants):
        raise not_found(f"operation {op_id} of {where}")
    if not any(access.grant_applies(g, claims.partner, eco) for g in grants):
        raise forbidden(f"{op_id} of {where} is not granted to your partner")
    refused = await alliances.call_refused(s, where, op.partner, eco)
    if refused is not None:
        raise refused
    return op
