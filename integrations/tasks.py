"""Celery entry points for outbound webhooks: ids in, services called, retry policy here."""

import random

from celery import shared_task

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
