"""The three-pane inbox: lists (with live counts) · the conversation · contact, ticket and
handoff. The conversation pane is the same partials as the conversation page, so the live code
(crm.js) and every action work the same in both; the separate pages stay as deep links."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .. import inbox_selectors, selectors
from ..access import staff_required
from .base import fragment_of, render_page
from .conversations import conversation_pane_context


def _list_name(request) -> str:
    name = request.GET.get("list", "queued")
    return name if name in inbox_selectors.LISTS else "queued"


def _selected(request) -> int | None:
    value = request.GET.get("c", "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _lists_context(request) -> dict:
    name = _list_name(request)
    return {
        "list_name": name,
        "selected_id": _selected(request),
        **inbox_selectors.inbox_lists(request.user, name),
    }


@staff_required
@require_GET
def inbox(request):
    context = _lists_context(request)
    conversation_id = context["selected_id"]
    if conversation_id is None and context["rows"]:
        conversation_id = context["rows"][0].conversation_id
        context["selected_id"] = conversation_id
    if conversation_id is not None:
        conversation = selectors.conversation_for_screen(conversation_id)
        if conversation is not None:
            context.update(conversation_pane_context(request, conversation))
    return render_page(request, "crm/inbox/inbox.html", context, nav="inbox")


@staff_required
@require_GET
@fragment_of("crm:inbox")
def inbox_lists(request):
    return render(request, "crm/inbox/_lists.html", _lists_context(request))


@staff_required
@require_GET
@fragment_of("crm:conversation")
def inbox_conversation(request, conversation_id: int):
    conversation = selectors.conversation_for_screen(conversation_id)
    if conversation is None:
        raise Http404
    return render(
        request,
        "crm/inbox/_workspace.html",
        {**conversation_pane_context(request, conversation), "list_name": _list_name(request)},
    )
