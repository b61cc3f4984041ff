"""The one place outbound HTTP clients are made (provider sends, webhook deliveries).

Tests swap the transport for an ``httpx.MockTransport`` with :func:`use_transport`, so nothing
reaches the network and the real client code (headers, JSON, status handling) still runs.
"""

from contextlib import contextmanager

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_transport: httpx.BaseTransport | None = None


def client() -> httpx.Client:
    return httpx.Client(
        timeout=TIMEOUT,
        transport=_transport,
        follow_redirects=False,
        headers={"User-Agent": "LiveEscalation/1.0"},
    )


@contextmanager
def use_transport(transport: httpx.BaseTransport):
    global _transport
    previous, _transport = _transport, transport
    try:
        yield transport
    finally:
        _transport = previous
