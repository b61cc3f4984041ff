from crm.errors import DomainError


class NotificationNotFound(DomainError):
    """No such notification for this user (someone else's counts as not found)."""

    code = "notification_not_found"
    status = 404
