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
