"""The embedded default's beat. Without a broker (Celery eager, `make run`), the periodic tasks of
`config/celery.py` run in a thread of the ASGI process, started and stopped with its lifespan, so
the sweeps, reminders and timeouts happen as they do in production, where `celery -A config beat`
runs them. It is Celery's own embedded beat service (what `celery worker -B` uses) with the
in-memory scheduler; an eager task it applies runs right there in its thread, in this process, so
what it broadcasts reaches this process's sockets through the in-memory channel layer."""

import asyncio
import logging
import threading

from celery.beat import EmbeddedService
from django.conf import settings

from .celery import app

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_service = None


def start_embedded_beat():
    """Idempotent; does nothing unless EMBEDDED_BEAT is on (the default when Celery is eager)."""
    global _service
    if not settings.EMBEDDED_BEAT:
        return None
    with _lock:
        if _service is None:
            _service = EmbeddedService(app, thread=True, scheduler_cls="celery.beat:Scheduler")
            _service.start()
            logger.info("embedded beat started: %d periodic tasks", len(app.conf.beat_schedule))
        return _service


def stop_embedded_beat() -> None:
    global _service
    with _lock:
        if _service is not None:
            _service.stop()
            _service = None


def warm_up_detector() -> None:
    """Load the detector's models now, so the first customer's message does not wait for them."""
    from escalation.detection import warm_up

    try:
        warm_up()
    except Exception:  # the first real message will report it, with its own error
        logger.warning("could not load the detector's models at start-up", exc_info=True)


async def lifespan(scope, receive, send):
    """ASGI lifespan: uvicorn sends startup and shutdown; sockets and requests never come here."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Before the server takes connections: loading the models competes for the CPU
            # with the first sockets and requests (seen: the socket limiter's Redis calls
            # timing out under a flood during the load).
            await asyncio.to_thread(warm_up_detector)
            start_embedded_beat()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            stop_embedded_beat()
            await send({"type": "lifespan.shutdown.complete"})
            return
