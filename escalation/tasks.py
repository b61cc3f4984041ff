"""Celery entry points of the escalation pipeline: thin, idempotent, ids in, services called."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def queue_analysis(*, message) -> None:
    """Listener of ``crm.hooks.message_stored``: after commit, analyse a customer's message
    (the sweep catches a lost enqueue). A WhatsApp/Instagram reply to the rating prompt is
    the rating, and is neither analysed nor answered."""
    from .satisfaction import take_rating_reply

    if message.sender != message.Sender.CUSTOMER or take_rating_reply(message=message):
        return
    message_id = message.id

    def enqueue():
        try:
            analyze_message.delay(message_id)
        except Exception:  # broker down: the message is stored; the sweep will pick it up
            logger.warning(
                "could not queue analysis of message %s; the sweep will", message_id, exc_info=True
            )

    transaction.on_commit(enqueue)


QUEUE_PLACES_PENDING = "escalation:queue-places-pending"


def queue_place_updates(*, kind: str, escalation_id: int) -> None:
    """Listener of ``crm.hooks.queue_changed``: after commit, tell waiting customers their new
    place. A burst of changes queues one task (a cache key the task clears when it starts);
    the beat runs it every minute anyway, as estimates move with time."""

    def enqueue():
        if not cache.add(QUEUE_PLACES_PENDING, 1, timeout=30):
            return  # one is already queued and has not started
        try:
            announce_queue_places.delay()
        except Exception:  # broker down: the beat's next run tells them
            cache.delete(QUEUE_PLACES_PENDING)
            logger.warning("could not queue the queue-place updates; the beat will")

    transaction.on_commit(enqueue, robust=True)


@shared_task(acks_late=True)
def announce_queue_places() -> int:
    from . import services

    cache.delete(QUEUE_PLACES_PENDING)  # a change from now on queues another run
    return services.announce_queue_places()


@shared_task(acks_late=True)
def analyze_message(message_id: int) -> None:
    """Idempotent; a failed run is not retried here: the sweep re-queues unanalysed messages."""
    from .pipeline import analyze_and_act

    analyze_and_act(message_id=message_id)


@shared_task(acks_late=True)
def answer_customer(message_id: int) -> None:
    from .pipeline import answer_customer_message

    answer_customer_message(message_id=message_id)


@shared_task
def sweep_unanalysed_messages() -> int:
    """Re-queue customer messages that have waited too long without an analysis."""
    from crm.models import Message

    now = timezone.now()
    older_than = now - timedelta(seconds=settings.LIVE_ESCALATION["ANALYSIS_SWEEP_AFTER_SECONDS"])
    ids = list(
        Message.objects.filter(
            sender=Message.Sender.CUSTOMER,
            analysis__isnull=True,
            rating__isnull=True,  # a rating reply is not for detection
            created_at__lte=older_than,
            created_at__gte=now - timedelta(days=1),
        ).values_list("id", flat=True)[:500]
    )
    for message_id in ids:
        analyze_message.delay(message_id)
    return len(ids)


@shared_task
def remind_overdue_escalations() -> int:
    from . import selectors, services

    return sum(
        services.remind_overdue_escalation(escalation_id=escalation_id)
        for escalation_id in selectors.overdue_escalation_ids()
    )


@shared_task(acks_late=True)
def run_replay_job(job_id: int) -> None:
    """Replays the job's conversations, saving progress after every chunk. Only the run that
    claims the queued job works on it."""
    from .services import run_replay_job as run

    run(job_id=job_id)
