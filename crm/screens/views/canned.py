"""Canned replies: the reply box's ``/`` search and insert, and the screen to manage them."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from crm import selectors as crm_selectors
from crm import services as crm_services
from crm.models import CannedReply, Conversation, Team

from .. import selectors
from ..access import staff_required
from ..errors import maps_domain_errors
from .base import fragment_of, render_page


@staff_required
@require_GET
@fragment_of("crm:canned")
def canned_search(request):
    """The ``/`` menu: matches by shortcut prefix or title, as an htmx-free HTML fragment."""
    replies = crm_selectors.search_canned_replies(request.user, request.GET.get("q", ""))
    return render(request, "crm/canned/_menu.html", {"replies": replies})


@staff_required
@require_POST
@maps_domain_errors
def canned_use(request, conversation_id: int):
    """The reply's text with its placeholders filled for this conversation (counts the use)."""
    conversation = get_object_or_404(
        Conversation.objects.select_related("contact"), pk=conversation_id
    )
    reply_id = request.POST.get("reply", "")
    if not reply_id.isdigit() or len(reply_id) > 18:
        return JsonResponse({"error": "Choose a canned reply."}, status=400)
    escalation = selectors.latest_escalation(conversation.pk)
    ticket = getattr(escalation, "ticket", None) if escalation else None
    text = crm_services.use_canned_reply(
        reply_id=int(reply_id),
        conversation=conversation,
        agent=request.user,
        ticket_reference=ticket.reference if ticket else "",
    )
    return JsonResponse({"text": text})


def _manage_context(request, **extra) -> dict:
    is_manager = crm_selectors.is_manager(request.user)
    return {
        "personal": CannedReply.objects.filter(owner=request.user).order_by("shortcut"),
        "team_replies": crm_selectors.canned_replies_for(request.user)
        .filter(team__isnull=False)
        .order_by("team__name", "shortcut"),
        "teams": Team.objects.all() if is_manager else [],
        "can_write_team": is_manager,
        "placeholders": ["{contact.first_name}", "{agent.name}", "{ticket.reference}"],
        **extra,
    }


@staff_required
@require_GET
def canned_list(request):
    return render_page(request, "crm/canned/manage.html", _manage_context(request), nav="canned")


@staff_required
@require_POST
@maps_domain_errors
def canned_save(request, reply_id: int | None = None):
    reply = get_object_or_404(CannedReply, pk=reply_id) if reply_id else None
    team = None
    team_id = request.POST.get("team", "")
    if reply is None and team_id.isdigit():
        team = get_object_or_404(Team, pk=int(team_id))
    crm_services.save_canned_reply(
        actor=request.user,
        reply=reply,
        team=team,
        shortcut=request.POST.get("shortcut", ""),
        title=request.POST.get("title", ""),
        body=request.POST.get("body", ""),
    )
    return redirect("crm:canned")


@staff_required
@require_POST
@maps_domain_errors
def canned_delete(request, reply_id: int):
    crm_services.delete_canned_reply(
        actor=request.user, reply=get_object_or_404(CannedReply, pk=reply_id)
    )
    return redirect("crm:canned")
