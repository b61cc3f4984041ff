"""Provider senders. Placeholder until the API/webhooks work lands: marks the message failed."""

from .models import Message


def deliver(*, message_id: int, task) -> None:
    Message.objects.filter(pk=message_id).update(
        delivery_status=Message.Delivery.FAILED, delivery_error="No sender configured."
    )
