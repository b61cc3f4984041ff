"""Replies that leave through a provider (WhatsApp, Instagram...) instead of a socket."""

from django.db import transaction

from .models import ChannelKind, Message

PROVIDER_CHANNELS = {ChannelKind.WHATSAPP, ChannelKind.INSTAGRAM}


def schedule_delivery(message: Message) -> None:
    """Queue the provider send after commit (the message is already marked pending)."""
    from .tasks import deliver_message

    message_id = message.id
    # robust: a broker outage must not cancel the other after-commit effects (broadcasts...).
    transaction.on_commit(lambda: deliver_message.delay(message_id), robust=True)
