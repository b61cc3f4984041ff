"""Ids that every log line carries: the request (or socket, or Celery task) and the conversation.

Context variables, so each request, socket and task sees its own values across ``await`` and
``sync_to_async`` hops. Set by ``config.ops.RequestContextMiddleware`` for HTTP, by the sockets
in ``crm.consumers``, by ``config.celery`` for tasks, and by services that learn the conversation.
"""

import contextvars
import logging
import re
import uuid

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
conversation_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "conversation_id", default=None
)


def new_request_id(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex


def bind_conversation(value: int | None) -> None:
    conversation_id.set(value)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``conversation_id`` to every record (empty/None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.conversation_id = conversation_id.get()
        return True


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"']+")


class RedactTokensFilter(logging.Filter):
    """The customer socket's URL carries the conversation's token (``?token=``), a credential
    for the whole conversation; uvicorn logs that URL for every socket it accepts."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _TOKEN_IN_QUERY.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
