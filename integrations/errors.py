from crm.errors import DomainError


class InvalidScopes(DomainError):
    code = "invalid_scopes"


class InvalidSubscription(DomainError):
    code = "invalid_subscription"


class InvalidTokenOwner(DomainError):
    code = "invalid_owner"
