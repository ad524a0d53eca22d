"""JSON Schema and AsyncAPI 3.0 documents generated from the contracts (pure functions).

``make contracts`` writes them to ``contracts/generated/``; a test fails when the
committed files differ from what the code generates.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts import headers, registry
from contracts.errors import ErrorBody
from contracts.subjects import EVENT_PREFIX


def _models() -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    for op in registry.OPERATIONS:
        for model in (op.request, op.reply):
            seen.setdefault(f"{model.__module__}.{model.__qualname__}", model)
    for event in registry.EVENT_TYPES:
        seen.setdefault(f"{event.__module__}.{event.__qualname__}", event)
    seen.setdefault("contracts.errors.ErrorBody", ErrorBody)
    return [seen[k] for k in sorted(seen)]


def _schemas(ref_template: str) -> tuple[dict[type[BaseModel], str], dict[str, Any]]:
    """(model → its $ref, the definitions), names made unique by pydantic."""
    refs, schema = models_json_schema(
        [(m, "validation") for m in _models()], ref_template=ref_template
    )
    by_model: dict[type[BaseModel], str] = {}
    for (model, _mode), ref in refs.items():
        if isinstance(model, type) and issubclass(model, BaseModel):
            by_model[model] = ref["$ref"]
    return by_model, schema.get("$defs", {})


def json_schemas() -> dict[str, Any]:
    """One JSON Schema document with every model under ``$defs``."""
    _, defs = _schemas("#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "partnermesh contracts v1",
        "$defs": defs,
    }


def _event_channel(event_type: str, batchable: bool) -> tuple[str, dict[str, Any]]:
    source_and_name = event_type.removeprefix("pm.v1.")
    key = "evt." + source_and_name.replace(".", "_")
    messages = {"event": {"$ref": f"#/components/messages/{_msg_name(event_type)}"}}
    if batchable:
        messages["batch"] = {"$ref": f"#/components/messages/{_msg_name(event_type)}_batch"}
    return key, {
        "address": f"{EVENT_PREFIX}.{{eco}}.{source_and_name}",
        "parameters": {"eco": {"description": "the ecosystem the event belongs to"}},
        "messages": messages,
    }


def _msg_name(event_type: str) -> str:
    return event_type.replace(".", "_")


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 description of every NATS channel (events and request/reply)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    refs, schemas = _schemas("#/components/schemas/{model}")
    for event_type, model in sorted(registry.EVENTS_BY_TYPE.items()):
        key, channel = _event_channel(event_type, model.BATCHABLE)
        channels[key] = channel
        messages[_msg_name(event_type)] = {
            "name": event_type,
            "contentType": "application/json",
            "payload": {"$ref": refs[model]},
        }
        if model.BATCHABLE:  # the outbox may join these into one message (mesh.outbox.batched)
            messages[f"{_msg_name(event_type)}_batch"] = {
                "name": f"{event_type} batch",
                "contentType": headers.EVENT_BATCH,
                "summary": "Several events in one message: a CloudEvents JSON batch.",
                "payload": {"type": "array", "minItems": 2, "items": {"$ref": refs[model]}},
            }
        operations[f"publish_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
        }
    for op in sorted(registry.OPERATIONS, key=lambda o: o.subject):
        key = op.subject.replace(".", "_")
        req, rep = f"{key}_request", f"{key}_reply"
        messages[req] = {"contentType": "application/json", "payload": {"$ref": refs[op.request]}}
        messages[rep] = {"contentType": "application/json", "payload": {"$ref": refs[op.reply]}}
        channels[key] = {
            "address": op.subject,
            "messages": {"request": {"$ref": f"#/components/messages/{req}"}},
        }
        channels[f"{key}_reply"] = {
            "address": None,
            "messages": {"reply": {"$ref": f"#/components/messages/{rep}"}},
        }
        operations[key] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": op.summary,
            "x-partnermesh-policy": op.policy.describe(),
            "x-http": {"method": op.method, "path": op.path, "status": op.status},
            "reply": {"channel": {"$ref": f"#/channels/{key}_reply"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "partnermesh NATS API",
            "version": "1.0.0",
            "description": "Request/reply operations (NATS micro services) and JetStream events. "
            "Errors come back with the Nats-Service-Error-Code header and an ErrorBody payload.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def documents() -> dict[str, Any]:
    """File name → document, for everything ``make contracts`` writes."""
    return {"schemas.json": json_schemas(), "asyncapi.json": asyncapi()}
