"""Scopes: read for safe methods, write for changes, manage for webhook subscriptions.

A token has the scopes it was given. A staff member logged in to the browsable API has read
and write; managers and superusers also manage. Customer tokens pass only where a view says
so (``allow_customer``), and only for their own conversation (the view checks the id).
"""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from rest_framework import exceptions, permissions

from .authentication import CustomerAccess
from .models import ApiToken, Scope


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"


def caller_scopes(request) -> set[str]:
    auth = request.auth
    if isinstance(auth, ApiToken):
        return set(auth.scopes or [])
    if isinstance(auth, CustomerAccess):
        return set()
    user = request.user
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return set()
    scopes = {Scope.READ, Scope.WRITE}
    profile = getattr(user, "agent_profile", None)
    if user.is_superuser or (profile is not None and profile.is_manager):
        scopes.add(Scope.MANAGE)
    return scopes


def required_scope(request, view) -> str:
    explicit = getattr(view, "required_scopes", {}).get(request.method)
    if explicit:
        return explicit
    return Scope.READ if request.method in permissions.SAFE_METHODS else Scope.WRITE


def is_customer(request) -> bool:
    return isinstance(request.auth, CustomerAccess)


class HasScope(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if is_customer(request):
            if getattr(view, "allow_customer", False):
                return True
            raise InsufficientScope(_("A customer token cannot call this endpoint."))
        if request.auth is None and not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        scope = required_scope(request, view)
        if scope not in caller_scopes(request):
            raise InsufficientScope(_("This call needs the %(scope)s scope.") % {"scope": scope})
        return True


def conversation_queryset():
    from crm.models import Conversation

    return Conversation.objects.select_related(
        "contact", "channel", "assigned_agent__agent_profile"
    )


def conversation_in_reach(request, pk):
    """The conversation, or 404 when it does not exist or a customer token is for another one
    (the same answer either way, so ids are not probed)."""
    if is_customer(request) and request.auth.conversation_id != pk:
        raise exceptions.NotFound()
    return get_object_or_404(conversation_queryset(), pk=pk)
