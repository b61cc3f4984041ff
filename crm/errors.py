"""Typed errors of the CRM; each edge (API, screens, sockets) maps them once."""


class DomainError(Exception):
    """Base of every error a caller can show to a person. ``code`` is stable for APIs."""

    code = "invalid"
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidTransition(DomainError):
    """A move its current state does not allow (escalations and tickets both raise it)."""

    code = "invalid_transition"
    status = 409


class InvalidMessage(DomainError):
    code = "invalid_message"


class ConversationClosed(DomainError):
    code = "conversation_closed"
    status = 409


class NotAssigned(DomainError):
    code = "not_assigned"
    status = 403


class ChannelNotFound(DomainError):
    code = "channel_not_found"
    status = 404  # a body's reference to nothing answers like a URL to nothing


class ReplyWindowClosed(DomainError):
    """WhatsApp: the customer last wrote more than 24 hours ago; only a template may go out."""

    code = "reply_window_closed"
    status = 409


class NotFound(DomainError):
    code = "not_found"
    status = 404


class PrechatRequired(DomainError):
    """The channel's pre-chat form is required and a field of it is missing."""

    code = "prechat_required"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
