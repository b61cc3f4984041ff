from celery import shared_task


@shared_task(bind=True, max_retries=5)
def deliver_message(self, message_id: int) -> None:
    """Send an AI/agent/system message out through its provider (WhatsApp, Instagram)."""
    from . import outbound_senders

    outbound_senders.deliver(message_id=message_id, task=self)
