"""Tickets: the list with filters, and one ticket with its history and conversation."""

from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.models import AgentProfile
from escalation.models import Priority
from tickets import services as ticket_services
from tickets.models import Ticket

from .. import selectors
from ..access import staff_required
from ..errors import maps_domain_errors
from ..forms import TicketFilterForm
from .base import querystring_without, render_page
from .conversations import _bad_request

PAGE_SIZE = 50


def _agents():
    return list(AgentProfile.objects.filter(user__is_active=True).select_related("user"))


@staff_required
@require_GET
def ticket_list(request):
    agents = _agents()
    form = TicketFilterForm(request.GET or None, agents=agents)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    priority = data.get("priority")
    rows = selectors.tickets_for_list(
        status=data.get("status") or "",
        priority=int(Priority.from_code(priority)) if priority else None,
        assignee=data.get("assignee") or "",
        user=request.user,
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page(
        request,
        "crm/tickets/list.html",
        {
            "form": form,
            "page": page,
            "tickets": page.object_list,
            "filters_query": querystring_without(request, "page"),
        },
        nav="tickets",
    )


def _ticket_or_404(ticket_id: int) -> Ticket:
    ticket = selectors.ticket_for_screen(ticket_id)
    if ticket is None:
        raise Http404
    return ticket


@staff_required
@require_GET
def ticket_detail(request, ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    history = sorted(
        [("ticket", event) for event in ticket.events.all()]
        + [("escalation", event) for event in ticket.escalation.events.all()],
        key=lambda pair: (pair[1].created_at, pair[0] == "ticket"),
    )
    return render_page(
        request,
        "crm/tickets/detail.html",
        {
            "ticket": ticket,
            "history": history,
            "agents": _agents(),
            "statuses": Ticket.Status.choices,
            "allowed_moves": sorted(ticket_services.ALLOWED_STATUS_MOVES.get(ticket.status, ())),
        },
        nav="tickets",
    )


@staff_required
@require_POST
@maps_domain_errors
def ticket_status(request, ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    status = request.POST.get("status", "")
    if status not in Ticket.Status.values:
        return _bad_request(request, _("Unknown ticket status."))
    ticket_services.change_ticket_status(
        ticket=ticket, status=status, actor=request.user, note=request.POST.get("note", "")[:1000]
    )
    return _back_to_ticket(request, ticket)


@staff_required
@require_POST
@maps_domain_errors
def ticket_assign(request, ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    value = request.POST.get("assignee", "")
    assignee = None
    if value:
        if not value.isdigit():
            return _bad_request(request, _("Choose an agent."))
        assignee = get_user_model().objects.filter(pk=int(value), is_active=True).first()
        if assignee is None:
            return _bad_request(request, _("That agent does not exist."))
    ticket_services.change_ticket_assignee(ticket=ticket, assignee=assignee, actor=request.user)
    return _back_to_ticket(request, ticket)


def _back_to_ticket(request, ticket):
    from django.http import HttpResponse
    from django.urls import reverse

    url = reverse("crm:ticket", args=[ticket.pk])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)
