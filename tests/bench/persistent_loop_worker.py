"""An experiment, not the product: the product's Celery app, with channel-layer sends from sync
code going through one long-lived event loop per worker process instead of ``async_to_sync``
(which, outside an event loop, makes a new loop and a new Redis connection for every send).

    python -m tests.bench --only handoff --worker-app tests.bench.persistent_loop_worker

It measures what moving ``crm.realtime.send_now`` to a persistent loop would save per handoff.
"""

import asyncio
import logging
import os
import threading

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from channels.layers import get_channel_layer  # noqa: E402

from config.celery import app  # noqa: E402
from crm import realtime  # noqa: E402

logger = logging.getLogger(__name__)
_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _running_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():  # one per (forked) process
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, daemon=True).start()
        return _loop


def send_now(group: str, event: dict) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, event), _running_loop())
        future.result(timeout=5)
    except Exception:
        logger.warning("channel layer unavailable; %s not pushed to %s", event["type"], group)
        return False
    return True


realtime.send_now = send_now

__all__ = ["app"]
