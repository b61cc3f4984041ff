from django.utils.translation import gettext as _

from crm.errors import DomainError, InvalidTransition

__all__ = [
    "AlreadyClaimed",
    "EscalationNotFound",
    "InvalidTransition",
    "NotYourEscalation",
    "ReasonRequired",
    "ReplayAlreadyRunning",
    "VerdictAlreadyGiven",
]


class AlreadyClaimed(DomainError):
    code = "already_claimed"
    status = 409

    def __init__(self, agent_display_name: str):
        super().__init__(
            _("%(name)s already took this conversation.") % {"name": agent_display_name}
        )
        self.agent_name = agent_display_name


class ReasonRequired(DomainError):
    # Whether a reason is needed depends on the escalation's state (not yet resolved): a 409
    # like every other refusal that depends on state, so the request itself is not malformed.
    code = "reason_required"
    status = 409


class NotYourEscalation(DomainError):
    code = "not_your_escalation"
    status = 403


class EscalationNotFound(DomainError):
    code = "escalation_not_found"
    status = 404


class VerdictAlreadyGiven(DomainError):
    code = "verdict_already_given"
    status = 409


class ReplayAlreadyRunning(DomainError):
    code = "replay_already_running"
    status = 409


class InvalidRating(DomainError):
    code = "invalid_rating"
    status = 400


class RatingNotRequested(DomainError):
    code = "rating_not_requested"
    status = 409


class AlreadyRated(DomainError):
    code = "already_rated"
    status = 409
