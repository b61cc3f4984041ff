from crm.errors import DomainError


class OfferNotYours(DomainError):
    """The offer was made to someone else, has expired, or the escalation moved on."""

    code = "offer_not_yours"
    status = 409
