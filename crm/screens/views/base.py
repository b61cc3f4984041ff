"""What every CRM page shares: the header (availability, bell) and the response helpers."""

from functools import wraps

from django.shortcuts import redirect, render
from django.urls import reverse
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


def fragment_of(page: str):
    """An htmx fragment view; opened directly (a bookmark, a new tab, a crawler) it sends the
    browser to the page that holds the fragment, named by its URL name (URL kwargs passed on),
    instead of showing an unstyled piece of a page."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.htmx:
                return redirect(reverse(page, kwargs=kwargs))
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
