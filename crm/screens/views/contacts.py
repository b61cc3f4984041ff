"""Search and history: conversations by contact name, email or text; a contact's page."""

from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from crm.models import Contact

from .. import inbox_selectors
from ..access import staff_required
from .base import render_page


@staff_required
@require_GET
def search(request):
    query = request.GET.get("q", "").strip()[:200]
    results = inbox_selectors.search_conversations(query)
    return render_page(
        request,
        "crm/contacts/search.html",
        {"query": query, "results": results, "too_short": 0 < len(query) < 2},
        nav="inbox",
    )


@staff_required
@require_GET
def contact_detail(request, contact_id: int):
    contact = get_object_or_404(Contact, pk=contact_id)
    return render_page(
        request,
        "crm/contacts/detail.html",
        inbox_selectors.contact_history(contact),
        nav="inbox",
    )
