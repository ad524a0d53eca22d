"""Connector contracts: durable flows across partners' operations."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.envelope import EventBase
from contracts.timestamps import Timestamp
from contracts.v1.connector.backends import OPERATION_ID, SLUG

# --- flows -----------------------------------------------------------------------------------


class FlowCall(BaseModel):
    operation: str = Field(pattern=OPERATION_ID)
    input: dict[str, Any] = Field(
        default_factory=dict,
        description='values; a string "$input.a.b" or "$steps.<step>.output.x" is a reference',
    )


class FlowStep(FlowCall):
    name: str = Field(pattern=SLUG)
    compensate: FlowCall | None = None


class StartFlowRequest(BaseModel):
    eco: str
    name: str = Field(max_length=200)
    input: dict[str, Any] = Field(default_factory=dict)
    steps: list[FlowStep] = Field(min_length=1, max_length=50)


class FlowRef(BaseModel):
    eco: str
    flow: str


class ListFlowsRequest(BaseModel):
    eco: str


class FlowStepState(BaseModel):
    name: str
    status: Literal["pending", "done", "failed", "compensated", "compensation_failed"]
    output: Any = None
    error: str | None = None


class FlowReply(BaseModel):
    id: str
    name: str
    owner_partner: str | None
    status: Literal["running", "compensating", "completed", "compensated", "failed"]
    steps: list[FlowStepState]
    error: str | None
    created_at: Timestamp
    updated_at: Timestamp


class FlowList(BaseModel):
    items: list[FlowReply]


class FlowFinishedData(BaseModel):
    flow: str
    name: str
    owner_partner: str | None
    status: str
    error: str | None = None


class FlowFinished(EventBase):
    SOURCE: ClassVar[str] = "/services/connector"
    type: Literal["pm.v1.connector.flow_finished"] = "pm.v1.connector.flow_finished"
    source: str = SOURCE
    data: FlowFinishedData
