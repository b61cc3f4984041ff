"""The conversation view: summary, history, contact, sentiment, and the agent's actions."""

from urllib.parse import urlsplit

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import selectors as crm_selectors
from crm import services as crm_services
from crm.models import Conversation, Team, agent_name
from escalation import services as escalation_services
from escalation.errors import AlreadyClaimed
from escalation.models import Escalation

from .. import charts, selectors
from ..access import is_manager, staff_required
from ..errors import maps_domain_errors, safe_next, toast_response
from ..forms import CloseForm, ReassignForm
from .base import fragment_of, render_page


def _conversation_or_404(conversation_id: int) -> Conversation:
    conversation = selectors.conversation_for_screen(conversation_id)
    if conversation is None:
        raise Http404
    return conversation


def _panel_context(request, conversation: Conversation, **extra) -> dict:
    escalation = selectors.latest_escalation(conversation.pk)
    owner = bool(escalation and escalation.claimed_by_id == request.user.pk)
    mine = owner and escalation.status == Escalation.Status.CLAIMED
    assignee = (
        conversation.mode == Conversation.Mode.AGENT
        and conversation.assigned_agent_id == request.user.pk
    )
    window = crm_selectors.reply_window(conversation)
    return {
        "conversation": conversation,
        "escalation": escalation,
        "mine": mine,
        "claimed_by_name": agent_name(escalation.claimed_by) if escalation else "",
        "can_manage": owner or is_manager(request.user),
        "can_reply": assignee and window.is_open,
        "is_assignee": assignee,
        "handled_by_other": conversation.mode == Conversation.Mode.AGENT
        and conversation.assigned_agent_id not in (None, request.user.pk),
        "reply_window": window,
        "templates": list(conversation.channel.templates.filter(is_approved=True))
        if conversation.channel.kind == "whatsapp"
        else [],
        **selectors.reassign_targets(),
        **extra,
    }


def _sentiment_context(messages) -> dict:
    return {"sentiment_chart": charts.sentiment_line(selectors.sentiment_series(messages))}


@staff_required
@require_GET
def conversation_list(request):
    mode = request.GET.get("mode", "")
    if mode not in Conversation.Mode.values:
        mode = ""
    return render_page(
        request,
        "crm/conversations/list.html",
        {
            "mine": selectors.my_conversations(request.user)[:50],
            "conversations": selectors.recent_conversations(mode=mode),
            "mode": mode,
            "modes": Conversation.Mode.choices,
        },
        nav="conversations",
    )


def conversation_pane_context(request, conversation: Conversation) -> dict:
    """What the conversation page and the inbox's conversation pane render."""
    history = list(selectors.conversation_messages(conversation.pk))
    return {
        **_panel_context(request, conversation),
        **selectors.contact_profile(conversation.contact, exclude_conversation=conversation.pk),
        **_sentiment_context(history),
        "history": history,
        "last_message_id": history[-1].id if history else 0,
    }


@staff_required
@require_GET
def conversation_detail(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    context = conversation_pane_context(request, conversation)
    return render_page(request, "crm/conversations/detail.html", context, nav="conversations")


@staff_required
@require_GET
@fragment_of("crm:conversation")
def conversation_messages(request, conversation_id: int):
    """Messages after ``?after=<id>``: the live view and its polling fallback append these."""
    get_object_or_404(Conversation.objects.only("id"), pk=conversation_id)
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        return HttpResponse(_("after must be a message id."), status=400)
    rows = selectors.conversation_messages(conversation_id, after=after)
    return render(request, "crm/conversations/_messages.html", {"history": rows})


@staff_required
@require_GET
@fragment_of("crm:conversation")
def conversation_panel(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    return render(
        request, "crm/conversations/_panel_refresh.html", _refresh_context(request, conversation)
    )


def _refresh_context(request, conversation: Conversation, **extra) -> dict:
    """The panel and, out of band, the contact's tickets: one state on the whole page."""
    return {
        **_panel_context(request, conversation, **extra),
        "tickets": selectors.contact_tickets(conversation.contact),
    }


@staff_required
@require_GET
@fragment_of("crm:conversation")
def conversation_sentiment(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    history = selectors.conversation_messages(conversation.pk)
    return render(request, "crm/conversations/_sentiment.html", _sentiment_context(history))


def _after_action(request, conversation_id: int, *, notice: str = "", status: int = 200):
    """htmx: the refreshed panel (and a nudge to fetch new messages); else back to the page."""
    if request.htmx:
        if request.htmx.target != "conversation-panel":
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("crm:conversation", args=[conversation_id])
            return response
        conversation = _conversation_or_404(conversation_id)
        response = render(
            request,
            "crm/conversations/_panel_refresh.html",
            _refresh_context(request, conversation, notice=notice),
            status=status,
        )
        if status >= 400:
            # crm.js swaps a 4xx that carries this header (a "taken by" panel is not an error
            # page); no HX-Retarget, since a live refresh may have replaced the panel already.
            response["X-Swap-On-Error"] = "1"
        response["HX-Trigger"] = "le-messages"
        return response
    if notice:
        messages.warning(request, notice)
    # A plain post (no htmx) from the inbox goes back to the inbox, the conversation still open.
    back = safe_next(request, "")
    if urlsplit(back).path == reverse("crm:inbox"):
        return redirect(back)
    return redirect("crm:conversation", conversation_id=conversation_id)


def _escalation_or_404(escalation_id: int) -> Escalation:
    return get_object_or_404(Escalation.objects.only("id", "conversation_id"), pk=escalation_id)


@staff_required
@require_POST
@maps_domain_errors
def take_over(request, escalation_id: int):
    escalation = _escalation_or_404(escalation_id)
    try:
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=request.user)
    except AlreadyClaimed as lost:
        # Someone else won the race: say who, on the same screen, without an error page.
        if request.htmx and request.htmx.target != "conversation-panel":
            return toast_response(request, lost.message, status=409, level="warning")
        return _after_action(request, escalation.conversation_id, notice=lost.message, status=409)
    return _after_action(request, escalation.conversation_id)


@staff_required
@require_POST
@maps_domain_errors
def resolve(request, escalation_id: int):
    escalation = _escalation_or_404(escalation_id)
    escalation_services.resolve_escalation(
        escalation_id=escalation.pk, agent=request.user, note=request.POST.get("note", "")[:1000]
    )
    return _after_action(request, escalation.conversation_id)


@staff_required
@require_POST
@maps_domain_errors
def close(request, escalation_id: int):
    escalation = _escalation_or_404(escalation_id)
    form = CloseForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form)
    escalation_services.close_escalation(
        escalation_id=escalation.pk, agent=request.user, reason=form.cleaned_data["reason"]
    )
    return _after_action(request, escalation.conversation_id)


@staff_required
@require_POST
@maps_domain_errors
def hand_back(request, escalation_id: int):
    escalation = _escalation_or_404(escalation_id)
    escalation_services.hand_back_to_ai(
        escalation_id=escalation.pk, agent=request.user, note=request.POST.get("note", "")[:1000]
    )
    return _after_action(request, escalation.conversation_id)


@staff_required
@require_POST
@maps_domain_errors
def reassign(request, escalation_id: int):
    from django.contrib.auth import get_user_model

    escalation = _escalation_or_404(escalation_id)
    form = ReassignForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form)
    target = form.cleaned_data["target"]
    kind, _sep, value = target.partition(":")
    to_agent = to_team = None
    if kind == "agent" and value.isdigit():
        to_agent = get_user_model().objects.filter(pk=int(value), is_active=True).first()
        if to_agent is None:
            return _bad_request(request, _("That agent does not exist."))
    elif kind == "team" and value.isdigit():
        to_team = Team.objects.filter(pk=int(value)).first()
        if to_team is None:
            return _bad_request(request, _("That team does not exist."))
    elif kind != "queue":
        return _bad_request(request, _("Choose an agent, a team or the queue."))
    escalation_services.reassign_escalation(
        escalation_id=escalation.pk,
        actor=request.user,
        to_agent=to_agent,
        to_team=to_team,
        note=form.cleaned_data["note"],
    )
    return _after_action(request, escalation.conversation_id)


@staff_required
@require_POST
@maps_domain_errors
def reply(request, conversation_id: int):
    """The agent's reply, or (``private=1`` / the note endpoint) a note for staff only."""
    conversation = get_object_or_404(Conversation, pk=conversation_id)
    private = request.POST.get("private") in ("1", "true", "on")
    crm_services.send_agent_message(
        conversation=conversation,
        agent=request.user,
        text=request.POST.get("text", ""),
        private_note=private,
    )
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = "le-messages"
        return response
    return redirect(safe_next(request, reverse("crm:conversation", args=[conversation_id])))


def _bad_request(request, message: str):
    if request.htmx:
        return toast_response(request, message, status=400)
    messages.error(request, message)
    return redirect(safe_next(request, reverse("crm:queue")))


def _form_error(request, form):
    errors = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
    return _bad_request(request, errors)


@staff_required
@require_POST
@maps_domain_errors
def send_template(request, conversation_id: int):
    """An approved WhatsApp template, the only message allowed once the 24 h window closed."""
    conversation = get_object_or_404(Conversation, pk=conversation_id)
    template_id = request.POST.get("template", "")
    template = (
        conversation.channel.templates.filter(pk=int(template_id)).first()
        if template_id.isdigit() and len(template_id) < 19
        else None
    )
    if template is None:
        return _bad_request(request, _("Choose an approved template."))
    crm_services.send_template_message(
        conversation=conversation, agent=request.user, template=template
    )
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = "le-messages"
        return response
    return redirect("crm:conversation", conversation_id=conversation_id)
