"""Replies that leave through a provider (WhatsApp, Instagram...) instead of a socket."""

from django.db import transaction

from .models import ChannelKind, Message

PROVIDER_CHANNELS = {ChannelKind.WHATSAPP, ChannelKind.INSTAGRAM}


def needs_provider_delivery(message: Message) -> bool:
    return (
        message.sender != Message.Sender.CUSTOMER
        and not message.is_private_note
        and message.channel.kind in PROVIDER_CHANNELS
    )


def schedule_delivery(message: Message) -> None:
    """Queue the provider send after commit (the message is already marked pending)."""
    from .tasks import deliver_message

    message_id = message.id
    transaction.on_commit(lambda: deliver_message.delay(message_id))
