"""ASGI middleware that bounds every HTTP request body before Django reads it.

Django's ASGI handler reads a whole body (into a temporary file past
``FILE_UPLOAD_MAX_MEMORY_SIZE``) before any view can look at ``Content-Length``, and waits as
long as a client takes to send it. Here, in front of Django:

- a declared ``Content-Length`` over the limit is answered 413 without reading a byte;
- a body sent without a length (chunked) is counted as it streams and answered 413 the moment
  it passes the limit;
- a body that has not fully arrived within the timeout is answered 408.

In each case Django is told the client went away (``http.disconnect``), so it stops reading and
answers nothing itself, and the response says ``Connection: close`` so the server drops the rest.
"""

import asyncio
import json
import time

from django.utils.translation import gettext as _


class RequestBodyLimitMiddleware:
    def __init__(self, app, *, max_bytes: int, timeout_seconds: float):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            return await refuse(send, 413, "too_large", self.too_large_message())
        return await BoundedBody(self, receive, send).run(scope)

    def too_large_message(self) -> str:
        return _("The request body is too large: the limit is %(limit)d bytes.") % {
            "limit": self.max_bytes
        }


class BoundedBody:
    """One request: counts the bytes Django reads and refuses once a limit is crossed."""

    def __init__(self, limit: RequestBodyLimitMiddleware, receive, send):
        self.limit = limit
        self.upstream_receive = receive
        self.upstream_send = send
        self.received = 0
        self.body_done = False
        self.refused = False
        self.deadline = time.monotonic() + limit.timeout_seconds

    async def run(self, scope):
        await self.limit.app(scope, self.receive, self.send)

    async def receive(self):
        if self.refused:
            return {"type": "http.disconnect"}
        if self.body_done:  # after the body: Django only listens for a disconnect
            return await self.upstream_receive()
        remaining = self.deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(self.upstream_receive(), max(remaining, 0))
        except TimeoutError:
            return await self.refuse(
                408, "body_timeout", _("The request body did not arrive in time.")
            )
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit.max_bytes:
            return await self.refuse(413, "too_large", self.limit.too_large_message())
        if not message.get("more_body", False):
            self.body_done = True
        return message

    async def send(self, message):
        if not self.refused:  # our refusal is the response; Django answers nothing more
            await self.upstream_send(message)

    async def refuse(self, status: int, code: str, message: str) -> dict:
        self.refused = True
        await refuse(self.upstream_send, status, code, message)
        return {"type": "http.disconnect"}


def declared_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length before the app sees it
    return None


async def refuse(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
