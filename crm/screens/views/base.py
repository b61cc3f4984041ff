"""What every CRM page shares: the header (availability, bell) and the response helpers."""

from django.shortcuts import render
from django.utils import timezone

from crm.models import AgentProfile

from .. import selectors
from ..access import is_manager


def header_context(request) -> dict:
    profile = selectors.header_profile(request.user)
    return {
        "me": profile,
        "is_manager": is_manager(request.user),
        "unread_count": selectors.unread_notification_count(request.user),
        "availability_choices": AgentProfile.Availability.choices,
        "server_now": timezone.now(),
    }


def render_page(request, template: str, context: dict, *, nav: str = "", status: int = 200):
    return render(
        request, template, {**header_context(request), "nav": nav, **context}, status=status
    )


def querystring_without(request, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()
