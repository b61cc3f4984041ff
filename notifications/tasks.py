"""Celery entry points of notifications: thin, ids in, services called, retry policy here."""

import logging
from smtplib import SMTPException

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    # SMTP refused, timed out or unreachable: try again after 1, 2, 4 ... s (full jitter),
    # capped at 10 minutes between tries; after the last one the sweep takes over.
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=10,
)
def send_notification_email(self, notification_id: int) -> str:
    """Send one notification's email at most once (see services.send_notification_email)."""
    outcome = services.send_notification_email(notification_id=notification_id)
    if outcome == services.EmailOutcome.IN_PROGRESS:
        # Another attempt holds the claim. Look again once it must have finished or lapsed, so a
        # send whose worker died is not lost; by then it is usually ALREADY_SENT.
        raise self.retry(countdown=services.EMAIL_CLAIM_LEASE.total_seconds() + 5)
    return str(outcome)


@shared_task
def requeue_unsent_emails() -> int:
    return services.requeue_unsent_emails()


@shared_task
def prune_old_notifications() -> int:
    deleted = services.prune_old_notifications()
    if deleted:
        logger.info("pruned %d old notifications", deleted)
    return deleted
