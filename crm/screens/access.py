"""Who may see which screen: staff for every CRM page, managers for analytics and settings."""

from functools import wraps
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import resolve_url


def is_manager(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    profile = getattr(user, "agent_profile", None)
    return profile is not None and profile.is_manager


def _to_login(request):
    """The login page; for htmx (a session that expired under an open page) the whole page
    goes there, instead of the login form being swapped into a fragment."""
    if request.htmx:
        parsed = urlparse(request.htmx.current_url or "")
        current = (parsed.path or "/crm/") + (f"?{parsed.query}" if parsed.query else "")
        response = HttpResponse(status=204)
        response["HX-Redirect"] = redirect_to_login(current)["Location"]
        return response
    return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))


def staff_required(view):
    """Logged in (else the login page) and staff (else 403)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _to_login(request)
        if not (request.user.is_staff or request.user.is_superuser):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def manager_required(view):
    """Logged in staff with the manager role (or a superuser), else 403."""

    @staff_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_manager(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
