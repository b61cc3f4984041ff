"""Reads the CRM screens need beyond the domain selectors. Each runs a fixed number of queries."""

from django.db.models import Count, Prefetch, Q

from crm.models import AgentProfile, Contact, Conversation, Message, Team, agent_name
from escalation.models import Escalation, EscalationEvent
from notifications import selectors as notification_selectors
from tickets.models import Ticket, TicketEvent


def header_profile(user) -> AgentProfile | None:
    """The user's profile through the cached relation (one query per request at most)."""
    try:
        return user.agent_profile
    except AgentProfile.DoesNotExist:
        return None


def unread_notification_count(user) -> int:
    return notification_selectors.unread_count(user)


def recent_notifications(user, *, limit: int = 15) -> list:
    return notification_selectors.recent_notifications(user, limit=limit)


def conversation_for_screen(conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.select_related(
            "contact", "channel", "team", "assistant", "assigned_agent__agent_profile"
        )
        .filter(pk=conversation_id)
        .first()
    )


def conversation_messages(conversation_id: int, *, after: int | None = None) -> list[Message]:
    """Every message, notes included (staff only), with author and analysis in one query;
    each carries ``author_name`` (the name colleagues and customers see)."""
    rows = Message.objects.filter(conversation_id=conversation_id).select_related(
        "author__agent_profile", "analysis"
    )
    if after is not None:
        rows = rows.filter(id__gt=after)
    messages = list(rows.order_by("id"))
    for message in messages:
        message.author_name = agent_name(message.author) if message.author_id else ""
    return messages


def latest_escalation(conversation_id: int) -> Escalation | None:
    """The active escalation, else the most recent one."""
    rows = Escalation.objects.filter(conversation_id=conversation_id).select_related(
        "team", "claimed_by__agent_profile", "ticket", "rating"
    )
    return (
        rows.filter(status__in=Escalation.ACTIVE_STATUSES).first()
        or rows.order_by("-escalated_at", "-id").first()
    )


def contact_profile(contact: Contact, *, exclude_conversation: int | None = None) -> dict:
    prior = (
        Conversation.objects.filter(contact=contact)
        .exclude(pk=exclude_conversation)
        .select_related("channel")
        .order_by("-created_at")[:10]
    )
    return {
        "identities": list(contact.identities.all()),
        "prior_conversations": list(prior),
        "tickets": contact_tickets(contact),
    }


def contact_tickets(contact: Contact) -> list:
    """The contact's latest tickets, newest first (the conversation's sidebar)."""
    return list(Ticket.objects.filter(contact=contact).order_by("-created_at")[:10])


def message_sentiment(message: Message) -> float | None:
    """The VADER-style compound score (-1..1) of a customer message, if it was analysed."""
    analysis = getattr(message, "analysis", None) if message.sender == "customer" else None
    if analysis is None:
        return None
    sentiment = (analysis.signals or {}).get("sentiment")
    score = sentiment.get("score") if isinstance(sentiment, dict) else sentiment
    try:
        return max(-1.0, min(1.0, float(score)))
    except (TypeError, ValueError):
        return None


def sentiment_series(messages) -> list[tuple[int, float]]:
    """(message id, score) for each analysed customer message, oldest first."""
    series = []
    for message in messages:
        score = message_sentiment(message)
        if score is not None:
            series.append((message.id, score))
    return series


def reassign_targets() -> dict:
    return {
        "agents": list(AgentProfile.objects.filter(user__is_active=True).select_related("user")),
        "teams": list(Team.objects.all()),
    }


def tickets_for_list(
    *, status: str = "", priority: int | None = None, assignee: str = "", user=None
):
    rows = Ticket.objects.select_related(
        "contact", "assignee__agent_profile", "conversation__channel"
    )
    if status:
        rows = rows.filter(status=status)
    if priority:
        rows = rows.filter(priority=priority)
    if assignee == "me" and user is not None:
        rows = rows.filter(assignee=user)
    elif assignee == "none":
        rows = rows.filter(assignee=None)
    elif assignee.isdigit():
        rows = rows.filter(assignee_id=int(assignee))
    return rows.order_by("-created_at", "-id")


def ticket_for_screen(ticket_id: int) -> Ticket | None:
    return (
        Ticket.objects.select_related(
            "contact",
            "assignee__agent_profile",
            "conversation__channel",
            "escalation__team",
            "escalation__claimed_by__agent_profile",
        )
        .prefetch_related(
            Prefetch("events", queryset=TicketEvent.objects.select_related("actor__agent_profile")),
            Prefetch(
                "escalation__events",
                queryset=EscalationEvent.objects.select_related("actor__agent_profile"),
            ),
        )
        .filter(pk=ticket_id)
        .first()
    )


def my_conversations(user):
    """The conversations this agent handles now, newest activity first."""
    return (
        Conversation.objects.filter(assigned_agent=user, mode=Conversation.Mode.AGENT)
        .select_related("contact", "channel", "team")
        .order_by("-last_message_at", "-id")
    )


def recent_conversations(*, mode: str = "", limit: int = 50):
    rows = Conversation.objects.select_related(
        "contact", "channel", "team", "assigned_agent__agent_profile"
    ).annotate(message_count=Count("messages", filter=Q(messages__is_private_note=False)))
    if mode:
        rows = rows.filter(mode=mode)
    return rows.order_by("-last_message_at", "-id")[:limit]


def escalations_per_day(filters, *, max_days: int = 92) -> list[tuple]:
    """(date, escalations) for each day of the metrics period (the last ``max_days`` at most),
    days without escalations included. One query."""
    from datetime import timedelta

    from django.db.models.functions import TruncDate
    from django.utils import timezone

    zone = timezone.get_current_timezone()
    rows = Escalation.objects.filter(escalated_at__gte=filters.start, escalated_at__lt=filters.end)
    if filters.channel:
        rows = rows.filter(conversation__channel__kind=filters.channel)
    if filters.team:
        rows = rows.filter(team_id=filters.team)
    counts = dict(
        rows.annotate(day=TruncDate("escalated_at", tzinfo=zone))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )
    last = timezone.localtime(filters.end - timedelta(microseconds=1), zone).date()
    first = max(timezone.localtime(filters.start, zone).date(), last - timedelta(days=max_days - 1))
    days = []
    day = first
    while day <= last:
        days.append((day, counts.get(day, 0)))
        day += timedelta(days=1)
    return days
