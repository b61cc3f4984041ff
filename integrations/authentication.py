"""Who is calling: an API token (``Authorization: Token <token>``), a staff session (the
browsable API), or a customer holding one conversation's token (``X-Customer-Token``)."""

import re
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from crm.selectors import conversation_for_customer_token

from .services import authenticate_api_token
from .throttles import TokenFailureThrottle


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``request.user`` is the token's owner and ``request.auth`` the ``ApiToken``."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in (b"token", b"bearer"):
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid Authorization header: use 'Token <token>'.")
            )
        failures = TokenFailureThrottle()
        wait = failures.wait_if_blocked(request)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        try:
            raw = header[1].decode()
        except UnicodeError:
            failures.record_failure()
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        token = authenticate_api_token(raw)
        if token is None:
            failures.record_failure()
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        return token.owner, token

    def authenticate_header(self, request):
        return self.keyword


@dataclass(frozen=True)
class CustomerAccess:
    """A customer who may read and write one conversation, nothing else."""

    conversation_id: int


CUSTOMER_TOKEN_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")  # crm.models.new_token


class CustomerTokenAuthentication(authentication.BaseAuthentication):
    header = "HTTP_X_CUSTOMER_TOKEN"

    """The token opens the conversation named in the URL (``pk``) or nothing: it is compared
    in constant time with that conversation's own (``conversation_for_customer_token``), never
    looked up. A conversation a well-formed token does not open answers 404 exactly like a
    missing one (objects outside the caller's reach don't exist for it); a value that cannot be
    a customer token (they are 43 URL-safe characters), or a URL without a conversation,
    answers 401."""

    def authenticate(self, request):
        raw = request.META.get(self.header)
        if raw is None:
            return None
        if not CUSTOMER_TOKEN_FORMAT.fullmatch(raw):
            raise exceptions.AuthenticationFailed(_("This is not a customer token."))
        kwargs = (getattr(request, "parser_context", None) or {}).get("kwargs") or {}
        conversation_id = kwargs.get("pk")
        if not isinstance(conversation_id, int):
            raise exceptions.AuthenticationFailed(_("A customer token opens one conversation."))
        conversation = conversation_for_customer_token(conversation_id, raw)
        if conversation is None:
            raise exceptions.NotFound(_("No such conversation."))
        return AnonymousUser(), CustomerAccess(conversation_id=conversation.pk)

    def authenticate_header(self, request):
        return "X-Customer-Token"
