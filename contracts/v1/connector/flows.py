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
    ecosystem: str | None = Field(
        default=None,
        pattern=SLUG,
        description="the operation's ecosystem when it is an allied one (granted to the "
        "flow's partner across an active alliance); null: the flow's own",
    )
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
    """A step as it stands: ``running`` while its call is under way, ``retrying`` when a
    transient failure is tried again (``attempts`` counts the calls of the current run,
    ``error`` tells the last failure), ``done`` or ``failed``; once a later step failed,
    ``compensating`` while its compensation runs, then ``compensated`` or
    ``compensation_failed``. A step never reached stays ``pending``."""

    name: str
    status: Literal[
        "pending",
        "running",
        "retrying",
        "done",
        "failed",
        "compensating",
        "compensated",
        "compensation_failed",
    ]
    operation: str | None = Field(default=None, description="the step's operation")
    ecosystem: str | None = Field(
        default=None, description="the step's operation's ecosystem when it is an allied one"
    )
    compensation: str | None = Field(default=None, description="the operation that undoes it")
    output: Any = None
    error: str | None = None
    attempts: int = Field(default=0, description="calls of the step in the current run")
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    compensation_attempts: int = 0
    compensation_started_at: Timestamp | None = None
    compensation_finished_at: Timestamp | None = None


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
