"""The one place that builds an Anthropic client.

Tests swap the HTTP transport through ``override_transport`` so the real SDK code runs without
the network. anthropic 2.x is built on ``httpx2`` (httpx's successor), so the transport is an
``httpx2.MockTransport``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    import anthropic
    import httpx2

# The SDK is imported when a client is built, not with this module: importing it builds about
# 1,500 pydantic models (seconds on a busy machine), which every assistant without Claude would
# otherwise pay on its first customer message, just to ask ``claude_available()``.
_transport: httpx2.BaseTransport | None = None


def claude_available() -> bool:
    return bool(settings.ANTHROPIC_API_KEY) or _transport is not None


def anthropic_client() -> anthropic.Anthropic:
    import anthropic

    # The SDK's own client class: anthropic 2.x is built on httpx2 and rejects httpx objects, so
    # tests pass an ``httpx2.MockTransport`` (what the SDK's HTTP library calls MockTransport).
    http_client = (
        anthropic.DefaultHttpxClient(transport=_transport) if _transport is not None else None
    )
    return anthropic.Anthropic(
        api_key=settings.ANTHROPIC_API_KEY or "test-key",
        timeout=settings.ANTHROPIC_TIMEOUT,
        max_retries=settings.ANTHROPIC_MAX_RETRIES,
        http_client=http_client,
    )


@contextmanager
def override_transport(transport: httpx2.BaseTransport):
    """Route every Claude call through ``transport`` (tests only)."""
    global _transport
    previous, _transport = _transport, transport
    try:
        yield
    finally:
        _transport = previous
