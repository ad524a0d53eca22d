"""Header names carried on NATS requests and HTTP calls."""

AUTHORIZATION = "Authorization"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
REQUEST_ID = "X-Request-Id"
# When the caller gives up on a request: Unix time in seconds (decimal). A service drops a
# request whose deadline has passed instead of working on it for nobody.
DEADLINE = "Pm-Deadline"
# NATS micro error headers (set by the service framework).
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
# JetStream de-duplication header: the event id.
MSG_ID = "Nats-Msg-Id"
# Content type of a message carrying a CloudEvents JSON batch (an array of events),
# as the outbox publishes joined events of a batchable type; single events carry none.
CONTENT_TYPE = "Content-Type"
EVENT_BATCH = "application/cloudevents-batch+json"
# A dead letter (contracts.subjects.dead_letter_subject) carries the original event as its
# body and says why, where it came from and who gave up on it in these headers.
DLQ_REASON = "Pm-Dead-Letter-Reason"  # rejected | undecodable | exhausted
DLQ_ERROR = "Pm-Dead-Letter-Error"
DLQ_PROCESS = "Pm-Dead-Letter-Process"
DLQ_CONSUMER = "Pm-Dead-Letter-Consumer"
DLQ_SUBJECT = "Pm-Original-Subject"
DLQ_STREAM = "Pm-Original-Stream"
DLQ_SEQUENCE = "Pm-Original-Sequence"
DLQ_DELIVERIES = "Pm-Deliveries"
DLQ_EVENT_ID = "Pm-Event-Id"
