"""Under the embedded default (eager Celery, no beat process) the ASGI process runs the periodic
tasks itself, started and stopped with uvicorn's lifespan."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import async_to_sync

from config.asgi import application
from config.celery import app as celery_app
from config.scheduler import stop_embedded_beat
from crm.models import Message
from escalation.models import MessageAnalysis

pytestmark = pytest.mark.django_db(transaction=True)


class Lifespan:
    """uvicorn's side of the lifespan protocol, against the real ASGI application, in a thread."""

    def __init__(self):
        self.answers: list[str] = []
        self._shutdown = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=async_to_sync(self._run), daemon=True)

    async def _run(self):
        events = iter(["lifespan.startup", "lifespan.shutdown"])

        async def receive():
            event = next(events)
            if event == "lifespan.shutdown":
                await asyncio.to_thread(self._shutdown.wait)
            return {"type": event}

        async def send(message):
            self.answers.append(message["type"])
            self._started.set()

        await application({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    def __enter__(self):
        self._thread.start()
        assert self._started.wait(60), "no answer to lifespan.startup"
        return self

    def __exit__(self, *exc):
        self._shutdown.set()
        self._thread.join(10)


@pytest.fixture
def fast_sweep(settings, monkeypatch):
    settings.EMBEDDED_BEAT = True
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "ANALYSIS_SWEEP_AFTER_SECONDS": 0}
    monkeypatch.setitem(
        celery_app.conf,
        "beat_schedule",
        {"sweep": {"task": "escalation.tasks.sweep_unanalysed_messages", "schedule": 0.2}},
    )
    yield
    stop_embedded_beat()


def test_the_asgi_process_sweeps_a_message_whose_analysis_was_never_queued(
    fast_sweep, conversation
):
    # Stored without going through the service: as if the enqueue after commit was lost.
    message = Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        sender=Message.Sender.CUSTOMER,
        text="where is my parcel?",
    )
    with Lifespan() as lifespan:
        assert lifespan.answers == ["lifespan.startup.complete"]
        deadline = time.monotonic() + 20
        while not MessageAnalysis.objects.filter(message=message).exists():
            assert time.monotonic() < deadline, "the embedded beat never swept the message"
            time.sleep(0.1)
    assert lifespan.answers[-1] == "lifespan.shutdown.complete"
    from config import scheduler

    assert scheduler._service is None  # stopped with the process


def test_without_embedded_beat_nothing_runs_in_the_asgi_process(settings, conversation):
    settings.EMBEDDED_BEAT = False
    from config import scheduler

    with Lifespan() as lifespan:
        assert scheduler._service is None
    assert lifespan.answers == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
