"""The header: the agent's availability and the notification bell."""

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from crm import services as crm_services
from crm.models import AgentProfile
from notifications import services as notification_services

from .. import selectors
from ..access import staff_required
from ..errors import maps_domain_errors, safe_next
from ..forms import AvailabilityForm
from .base import fragment_of, render_page
from .conversations import _bad_request


@staff_required
@require_POST
@maps_domain_errors
def set_availability(request):
    form = AvailabilityForm(request.POST)
    if not form.is_valid():
        return _bad_request(request, form.errors["availability"][0])
    profile = crm_services.set_agent_availability(
        user=request.user, availability=form.cleaned_data["availability"]
    )
    if request.htmx:
        return render(
            request,
            "crm/partials/availability.html",
            {"me": profile, "availability_choices": AgentProfile.Availability.choices},
        )
    return redirect(safe_next(request, "/crm/"))


@staff_required
@require_GET
@fragment_of("crm:notifications")
def notification_badge(request):
    return render(
        request,
        "crm/notifications/_badge.html",
        {"unread_count": selectors.unread_notification_count(request.user)},
    )


@staff_required
@require_GET
def notification_list(request):
    """The bell's drop-down (htmx), or the same list as a page of its own when opened directly."""
    context = {"notifications": selectors.recent_notifications(request.user)}
    if request.htmx:
        return render(request, "crm/notifications/_list.html", context)
    return render_page(request, "crm/notifications/page.html", context)


@staff_required
@require_POST
@maps_domain_errors
def notification_read(request, notification_id: int):
    notification = notification_services.mark_notification_read(
        user=request.user, notification_id=notification_id
    )
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = "le-notifications"
        if notification.link:
            response["HX-Redirect"] = notification.link
        return response
    return redirect(notification.link or "crm:queue")


@staff_required
@require_POST
@maps_domain_errors
def notifications_read_all(request):
    notification_services.mark_all_read(user=request.user)
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = "le-notifications"
        return response
    return redirect(safe_next(request, "/crm/"))
