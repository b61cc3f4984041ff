"""Reads for the bell and the notifications list. Each runs one query."""

from .models import Notification


def _in_app_for(user):
    return Notification.objects.filter(recipient=user, show_in_app=True)


def unread_count(user) -> int:
    """How many in-app notifications ``user`` has not read (the bell's badge)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return _in_app_for(user).filter(read_at__isnull=True).count()


def recent_notifications(user, limit: int = 20) -> list[Notification]:
    """The newest in-app notifications of ``user``, read or not, with the escalation, its
    conversation and contact loaded (no query per row)."""
    if not getattr(user, "is_authenticated", False) or limit <= 0:
        return []
    return list(
        _in_app_for(user)
        .select_related("escalation__conversation__contact", "escalation__team")
        .order_by("-created_at", "-id")[:limit]
    )
