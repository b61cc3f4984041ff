"""Celery entry points for outbound webhooks: ids in, services called, retry policy here."""

import random
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

MAX_ATTEMPTS = 8


def backoff_seconds(retries: int) -> int:
    """30 s, 1 min, 2 min ... capped at 1 h, with jitter so receivers are not hit in step."""
    base = min(3600, 30 * 2**retries)
    return base + random.randint(0, base // 4)


@shared_task(bind=True, acks_late=True, max_retries=MAX_ATTEMPTS - 1)
def deliver_webhook(self, delivery_id: int) -> bool:
    from . import services

    final = self.request.retries >= self.max_retries
    delivered = services.attempt_webhook_delivery(delivery_id=delivery_id, final=final)
    if not delivered and not final:
        raise self.retry(countdown=backoff_seconds(self.request.retries))
    return delivered


@shared_task
def resend_stuck_webhook_deliveries() -> int:
    """Beat sweep: re-queue pending deliveries whose task was lost (broker down at commit)."""
    from . import services

    ids = services.pending_delivery_ids()
    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)
    return len(ids)


# --- Provider replies (WhatsApp, Instagram) ---------------------------------------------


@shared_task(bind=True, max_retries=5)
def deliver_message(self, message_id: int) -> None:
    """Send an AI/agent/system message out through its provider (WhatsApp, Instagram)."""
    from . import senders

    senders.deliver(message_id=message_id, task=self)


# Longer than the longest retry wait of deliver_message, so a live retry chain is left alone.
STUCK_DELIVERY_AFTER = timedelta(minutes=30)


@shared_task
def resend_stuck_deliveries() -> int:
    """Re-queue provider replies still pending long after they were stored (their task was
    lost: broker down at commit, or a worker died)."""
    from crm.models import Message

    now = timezone.now()
    ids = list(
        Message.objects.filter(
            delivery_status=Message.Delivery.PENDING,
            created_at__lte=now - STUCK_DELIVERY_AFTER,
            created_at__gte=now - timedelta(days=1),
        ).values_list("id", flat=True)[:500]
    )
    for message_id in ids:
        deliver_message.delay(message_id)
    return len(ids)
