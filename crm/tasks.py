from datetime import timedelta

from celery import shared_task
from django.utils import timezone


@shared_task(bind=True, max_retries=5)
def deliver_message(self, message_id: int) -> None:
    """Send an AI/agent/system message out through its provider (WhatsApp, Instagram)."""
    from . import outbound_senders

    outbound_senders.deliver(message_id=message_id, task=self)


# Longer than the longest retry wait of deliver_message, so a live retry chain is left alone.
STUCK_DELIVERY_AFTER = timedelta(minutes=30)


@shared_task
def resend_stuck_deliveries() -> int:
    """Re-queue provider replies still pending long after they were stored (their task was
    lost: broker down at commit, or a worker died)."""
    from .models import Message

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
