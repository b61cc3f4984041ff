"""CRM → Live Escalation: the queue of conversations waiting for an agent."""

from django.core.paginator import Paginator
from django.shortcuts import render

from escalation.selectors import queued_escalations

from ..access import staff_required
from ..forms import QueueFilterForm
from .base import querystring_without, render_page

PAGE_SIZE = 50


@staff_required
def queue(request):
    """Filters live in the URL; htmx refreshes (filter change, socket event, polling) get only
    the results partial. Query count is fixed whatever the queue's length."""
    form = QueueFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()
    page = Paginator(queued_escalations(form.queue_filters()), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "form": form,
        "page": page,
        "escalations": page.object_list,
        "filters_query": querystring_without(request, "page"),
        "is_filtered": any(request.GET.get(name) for name in form.fields),
    }
    if request.htmx and request.htmx.target == "queue-results":
        return render(request, "crm/queue/_results.html", context)
    return render_page(request, "crm/queue/queue.html", context, nav="queue")
