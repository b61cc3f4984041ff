from django.utils.translation import gettext as _

from crm.errors import DomainError


class EscalationActive(DomainError):
    """The ticket follows a live escalation: its status and assignee move with the handoff."""

    code = "escalation_active"
    status = 409

    def __init__(self, message: str | None = None):
        super().__init__(
            message
            or _(
                "This ticket's escalation is still active. Resolve or close the escalation instead."
            )
        )
