"""Reads of conversations and messages for the customer-facing edges (widget socket, widget
polling, the public API): one place for the customer-token check and for "what a customer may
see", so the edges cannot drift apart."""

import secrets

from .models import Channel, ChannelKind, Conversation, Message


def conversation_for_customer_token(conversation_id: int, token) -> Conversation | None:
    """The conversation when ``token`` is its customer token (compared in constant time);
    None for an unknown conversation, an empty or wrong token. Channel, contact and assigned
    agent come with it."""
    if not isinstance(token, str) or not token:
        return None
    conversation = (
        Conversation.objects.select_related("channel", "contact", "assigned_agent__agent_profile")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None or not conversation.customer_token:
        return None
    if not secrets.compare_digest(
        conversation.customer_token.encode(), token.encode("utf-8", "replace")
    ):
        return None
    return conversation


def messages_after(conversation_id: int, after_id: int = 0, *, private_notes: bool):
    """The messages with id > after_id, oldest first, authors with them; private notes only
    when ``private_notes`` (staff). A queryset, for the API to paginate."""
    rows = Message.objects.filter(conversation_id=conversation_id, id__gt=after_id)
    if not private_notes:
        rows = rows.filter(is_private_note=False)
    return rows.select_related("author__agent_profile").order_by("id")


def customer_messages_after(conversation_id: int, after_id: int, limit: int) -> list[Message]:
    """At most ``limit`` messages the customer may see (no private notes) with id > after_id,
    oldest first."""
    return list(messages_after(conversation_id, after_id, private_notes=False)[:limit])


def staff_messages_after(conversation_id: int, after_id: int, limit: int) -> list[Message]:
    """At most ``limit`` messages, private notes included, with id > after_id, oldest first."""
    return list(messages_after(conversation_id, after_id, private_notes=True)[:limit])


def website_channel_origins() -> list[str]:
    """Every origin pattern some active website channel allows (``Channel.allowed_origins``)."""
    patterns = []
    rows = Channel.objects.filter(kind=ChannelKind.WEBSITE, is_active=True).values_list(
        "allowed_origins", flat=True
    )
    for origins in rows:
        patterns += [o for o in (origins or []) if isinstance(o, str) and o]
    return patterns
