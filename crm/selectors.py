"""Reads of conversations and messages for the customer-facing edges (widget socket, widget
polling, the public API): one place for the customer-token check and for "what a customer may
see", so the edges cannot drift apart."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, IntegerField, Q, Value, When

from .models import CannedReply, Channel, ChannelKind, Conversation, Message

WHATSAPP_REPLY_WINDOW = timedelta(hours=24)


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


def is_manager(user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    profile = getattr(user, "agent_profile", None)
    return profile is not None and profile.is_manager


def canned_replies_for(user):
    """The canned replies ``user`` may insert: their own and their teams' (managers: every
    team's)."""
    replies = CannedReply.objects.select_related("team")
    if is_manager(user):
        return replies.filter(Q(owner=user) | Q(team__isnull=False))
    return replies.filter(Q(owner=user) | Q(team__agents__user=user)).distinct()


def search_canned_replies(user, query: str, *, limit: int = 8):
    """Shortcut prefix matches first, then title matches, then replies whose text has the word
    (an agent remembers "refund" from what the reply says); most used first within each."""
    query = (query or "").strip().lstrip("/")[:40]
    replies = canned_replies_for(user)
    if not query:
        return list(replies.order_by("-use_count", "shortcut")[:limit])
    # Ranked in the query, not after a cut: a word in the text of many often-used replies must
    # not push the reply whose shortcut starts with it out of the rows looked at.
    rank = Case(
        When(shortcut__istartswith=query, then=Value(0)),
        When(title__icontains=query, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return list(
        replies.filter(
            Q(shortcut__istartswith=query) | Q(title__icontains=query) | Q(body__icontains=query)
        )
        .annotate(rank=rank)
        .order_by("rank", "-use_count", "shortcut")[:limit]
    )


@dataclass(frozen=True)
class ReplyWindow:
    applies: bool  # only WhatsApp limits free text
    closes_at: datetime | None = None
    is_open: bool = True


def reply_window(conversation: Conversation, *, now: datetime | None = None) -> ReplyWindow:
    """WhatsApp's customer-service window: free text only within 24 h of the customer's last
    message (one query)."""
    if conversation.channel.kind != ChannelKind.WHATSAPP:
        return ReplyWindow(applies=False)
    from django.utils import timezone

    last = (
        Message.objects.filter(conversation_id=conversation.pk, sender=Message.Sender.CUSTOMER)
        .order_by("-id")
        .values_list("created_at", flat=True)
        .first()
    )
    if last is None:
        return ReplyWindow(applies=True, closes_at=None, is_open=False)
    closes_at = last + WHATSAPP_REPLY_WINDOW
    return ReplyWindow(
        applies=True, closes_at=closes_at, is_open=(now or timezone.now()) < closes_at
    )
