"""DomainError → what a person sees, mapped in one place for every CRM screen.

htmx requests get the error as a toast (``HX-Retarget: #toasts``) with the error's 4xx status;
crm.js lets htmx swap 4xx responses that carry ``HX-Retarget``. Plain form posts get a django
message and a redirect back to where they came from.
"""

from functools import wraps

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from crm.errors import DomainError


def safe_next(request, default: str) -> str:
    for candidate in (request.POST.get("next"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return default


def toast_response(request, message: str, *, status: int = 400, level: str = "error"):
    response = render(
        request, "crm/partials/toast.html", {"level": level, "message": message}, status=status
    )
    response["HX-Retarget"] = "#toasts"
    response["HX-Reswap"] = "beforeend"
    return response


def domain_error_response(request, error: DomainError, *, default_next: str = "/crm/"):
    if request.htmx:
        return toast_response(request, error.message, status=error.status)
    messages.error(request, error.message)
    return redirect(safe_next(request, default_next))


def maps_domain_errors(view):
    """Wrap a view that calls services: a DomainError becomes a toast or a message."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DomainError as error:
            return domain_error_response(request, error)

    return wrapper
