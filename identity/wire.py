"""The lean client-credentials path at the HTTP layer, under uvicorn.

:class:`identity.fastpath.TokenFastPath` answers the common client-credentials request
in front of the whole ASGI app. Under uvicorn (``python -m identity``), this protocol
goes one step further down: it recognises the same request while httptools parses it
and answers it from the parser callbacks, with no ASGI scope, no request/response cycle
and no task per request. What it answers, and everything it declines, is decided by the
same :func:`identity.fastpath.issue`; a declined request is replayed, headers and body,
into uvicorn's own handling, so the full path sees exactly what the client sent.

HTTP/1.1 order is kept: while a lean answer waits for its audit event to commit, the
connection holds a cycle that is not complete, so a pipelined request behind it is
queued by uvicorn as behind any other request; closing, keep-alive and graceful
shutdown go through uvicorn's own book-keeping.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from identity.fastpath import (
    HEADERS,
    MAX_BODY,
    Issued,
    TokenFastPath,
    eco_of_path,
    headers_of,
    issue,
    signed,
)

log = logging.getLogger(__name__)

OK = b"HTTP/1.1 200 OK\r\n"
FAILED = b"HTTP/1.1 503 Service Unavailable\r\n"
FAILED_BODY = (
    b'{"type":"about:blank","title":"Service Unavailable","status":503,'
    b'"detail":"the token could not be recorded; try again"}'
)
FIXED = b"".join(name + b": " + value + b"\r\n" for name, value in HEADERS)


_defaults: tuple[list[tuple[bytes, bytes]], bytes] = ([], b"")


def _default_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers (``server``, ``date``) as written in a response head;
    uvicorn swaps in a new list when the date changes, so they are joined once a second."""
    global _defaults
    if _defaults[0] is not headers:
        _defaults = (headers, b"".join(n + b": " + v + b"\r\n" for n, v in headers))
    return _defaults[1]


class _NoEvent:
    """uvicorn sets its cycle's ``message_event`` on disconnect; a lean answer reads none."""

    __slots__ = ()

    def set(self) -> None:
        return None


class LeanCycle:
    """Stands in for uvicorn's request/response cycle while a lean answer is pending.

    uvicorn reads ``response_complete`` to queue a pipelined request behind it, sets
    ``disconnected`` when the client goes away and clears ``keep_alive`` on shutdown."""

    __slots__ = ("disconnected", "keep_alive", "response_complete")
    message_event = _NoEvent()

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.disconnected = False
        self.response_complete = False


class TokenProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that answers lean client-credentials requests itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fast = getattr(self.config.app, "fast_path", None)
        self.fast: TokenFastPath | None = fast if isinstance(fast, TokenFastPath) else None
        self._lean: tuple[str, str, float] | None = None  # (eco, authorization, started)
        self._body: list[bytes] = []

    def on_headers_complete(self) -> None:
        self._lean = self._candidate()
        if self._lean is None:
            super().on_headers_complete()
        else:
            self._body = []

    def _candidate(self) -> tuple[str, str, float] | None:
        """(eco, authorization, start) when the request may be answered here; else None."""
        fast = self.fast
        if fast is None or (self.cycle is not None and not self.cycle.response_complete):
            return None  # not the identity app, or a request still in flight before this one
        parser = self.parser
        if parser.get_method() != b"POST" or parser.get_http_version() != "1.1":
            return None
        if self.expect_100_continue or parser.should_upgrade():
            return None
        url = self.url
        if b"?" in url or b"%" in url or b"#" in url:
            return None
        try:
            eco = eco_of_path(url.decode("ascii"))
        except UnicodeDecodeError:
            return None
        if eco is None or self.root_path or fast.runtime() is None:
            return None
        auth = headers_of(self.headers)
        if auth is None:
            return None
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
        if length is None or length > MAX_BODY:
            return None
        return eco, auth, time.perf_counter()

    def on_body(self, body: bytes) -> None:
        if self._lean is None:
            super().on_body(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        lean, self._lean = self._lean, None
        if lean is None:
            super().on_message_complete()
            return
        body, self._body = b"".join(self._body), []
        eco, auth, started = lean
        fast = self.fast
        rt = fast.runtime() if fast is not None else None
        group = getattr(rt, "group", None)
        if fast is None or group is None or not group.running:
            self._decline(body)  # not started yet, or stopping: the full path answers
            return
        result = issue(rt, fast.templates, eco, auth, body)
        access_token = signed(result)
        if result is None or access_token is None:
            self._decline(body)
            return
        cycle = LeanCycle(keep_alive=self.parser.should_keep_alive())
        self.cycle = cycle  # type: ignore[assignment]
        # answered once its audit row is durable, as on the full path
        group.submit_then(
            [result.row],
            lambda failure: self._answer(failure, cycle, rt, eco, result, access_token, started),
        )

    def _decline(self, body: bytes) -> None:
        """Hand the request to uvicorn's own handling, as if it had just been parsed."""
        super().on_headers_complete()
        if body:
            super().on_body(body)
        super().on_message_complete()

    def _answer(
        self,
        failure: BaseException | None,
        cycle: LeanCycle,
        rt: Any,
        eco: str,
        issued: Issued,
        access_token: str,
        started: float,
    ) -> None:
        """Write the answer once the audit commit is done (``failure``: why it failed)."""
        failed = failure is not None
        if cycle.disconnected or self.transport.is_closing():
            cycle.response_complete = True
            return
        if failed:
            log.error("lean token answer: its audit event was not committed; answered 503")
            head, content = FAILED, FAILED_BODY
            extra = b"content-type: application/problem+json\r\n"
            cycle.keep_alive = False
        else:
            head, content, extra = OK, issued.body(access_token), FIXED
        parts = [head, extra, _default_headers(self.server_state.default_headers)]
        parts.append(b"content-length: %d\r\n" % len(content))
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", content]
        self.transport.write(b"".join(parts))
        cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()
        if not failed and self.fast is not None:
            self.fast.answered(rt, eco, issued.client_id, started)
