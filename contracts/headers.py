"""Header names carried on NATS requests and HTTP calls."""

AUTHORIZATION = "Authorization"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
REQUEST_ID = "X-Request-Id"
# NATS micro error headers (set by the service framework).
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
# JetStream de-duplication header: the event id.
MSG_ID = "Nats-Msg-Id"
# Content type of a message carrying a CloudEvents JSON batch (an array of events),
# as the outbox publishes joined events of a batchable type; single events carry none.
CONTENT_TYPE = "Content-Type"
EVENT_BATCH = "application/cloudevents-batch+json"
