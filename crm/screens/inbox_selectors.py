"""Reads of the three-pane inbox: the four lists, their counts, and the contact's history.
Each runs a fixed number of queries whatever the size of the lists."""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from crm.models import Contact, Conversation, Message
from escalation.models import Escalation, SatisfactionRating
from tickets.models import Ticket

LISTS = ("queued", "mine", "team", "resolved")
RECENTLY_RESOLVED = timedelta(days=7)
LIST_LIMIT = 50
Status = Escalation.Status


def _list_filters(user, *, now=None) -> dict[str, Q]:
    since = (now or timezone.now()) - RECENTLY_RESOLVED
    team_ids = (
        list(user.agent_profile.teams.values_list("id", flat=True)) if _has_profile(user) else []
    )
    return {
        "queued": Q(status=Status.QUEUED),
        "mine": Q(status=Status.CLAIMED, claimed_by=user),
        "team": Q(status__in=Escalation.ACTIVE_STATUSES, team_id__in=team_ids),
        "resolved": Q(status__in=(Status.RESOLVED, Status.CLOSED), resolved_at__gte=since),
    }


def _has_profile(user) -> bool:
    try:
        return user.agent_profile is not None
    except Exception:  # RelatedObjectDoesNotExist: a staff user without a profile
        return False


def inbox_counts(user, filters: dict[str, Q] | None = None) -> dict[str, int]:
    """The four counts in one query."""
    filters = filters or _list_filters(user)
    return Escalation.objects.aggregate(
        **{name: Count("id", filter=condition) for name, condition in filters.items()}
    )


def inbox_list(user, name: str, filters: dict[str, Q] | None = None) -> list[Escalation]:
    """One list's rows: queued ones most urgent then longest waiting, the others newest first."""
    filters = filters or _list_filters(user)
    rows = Escalation.objects.filter(filters[name]).select_related(
        "conversation__contact", "conversation__channel", "team", "claimed_by__agent_profile"
    )
    if name == "queued":
        rows = rows.order_by("-priority", "escalated_at", "id")
    elif name == "resolved":
        rows = rows.order_by("-resolved_at", "-id")
    else:
        rows = rows.order_by("-escalated_at", "-id")
    return list(rows[:LIST_LIMIT])


def inbox_lists(user, name: str) -> dict:
    filters = _list_filters(user)
    return {"counts": inbox_counts(user, filters), "rows": inbox_list(user, name, filters)}


def search_conversations(query: str, *, limit: int = 50) -> list[Conversation]:
    """Conversations whose contact's name or email, or any message's text, contains ``query``
    (case-insensitive). On PostgreSQL the three ``ILIKE '%…%'`` scans use trigram GIN indexes
    (migration crm 0004); SQLite scans. Newest activity first."""
    query = (query or "").strip()[:200]
    if len(query) < 2:
        return []
    by_message = Message.objects.filter(text__icontains=query, is_private_note=False).values(
        "conversation_id"
    )
    by_contact = Contact.objects.filter(Q(name__icontains=query) | Q(email__icontains=query))
    return list(
        Conversation.objects.filter(Q(contact__in=by_contact) | Q(id__in=by_message))
        .select_related("contact", "channel", "assigned_agent__agent_profile")
        .order_by("-last_message_at", "-id")[:limit]
    )


def contact_history(contact: Contact) -> dict:
    """Every conversation, ticket and rating of one contact (five queries)."""
    conversations = list(
        Conversation.objects.filter(contact=contact)
        .select_related("channel", "assigned_agent__agent_profile")
        .annotate(message_count=Count("messages", filter=Q(messages__is_private_note=False)))
        .order_by("-created_at")
    )
    tickets = list(
        Ticket.objects.filter(contact=contact).select_related("assignee").order_by("-created_at")
    )
    return {
        "contact": contact,
        "identities": list(contact.identities.all()),
        "conversations": conversations,
        "tickets": tickets,
        "ratings": _ratings(contact),
    }


def _ratings(contact: Contact) -> list:
    """The contact's satisfaction ratings, newest first, with the agent who held each (one
    query)."""
    return list(
        SatisfactionRating.objects.filter(escalation__conversation__contact=contact)
        .select_related("escalation__claimed_by__agent_profile")
        .order_by("-created_at", "-id")
    )
