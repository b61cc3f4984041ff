"""Settings for managers: handoff messages with a live preview, each assistant's Agent Framework
section (``agent_framework.py``), and each agent's notification preference. Agents edit their own
preference."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import services as crm_services
from crm.models import AgentProfile, Assistant, CRMSettings

from ..access import manager_required, staff_required
from ..errors import maps_domain_errors
from ..forms import AgentPreferencesForm, MessagesSettingsForm
from .agent_framework import assistant_form, latest_replay_jobs
from .base import render_page

PREVIEW_AGENT = "Marina"
PREVIEW_WAIT_MINUTES = 4


def settings_context(*, messages_form=None, assistant_forms=None):
    crm_settings = CRMSettings.load()
    messages_form = messages_form or MessagesSettingsForm(
        initial={
            "handoff_message": crm_settings.handoff_message,
            "takeover_message": crm_settings.takeover_message,
        }
    )
    assistants = list(Assistant.objects.all())
    replay_jobs = latest_replay_jobs()
    assistant_forms = assistant_forms or {}
    return {
        "messages_form": messages_form,
        "preview": _preview(
            messages_form["handoff_message"].value() or "",
            messages_form["takeover_message"].value() or "",
        ),
        "assistants": [
            (
                assistant,
                assistant_forms.get(assistant.pk) or assistant_form(assistant),
                replay_jobs.get(assistant.pk),
            )
            for assistant in assistants
        ],
        "agents": list(AgentProfile.objects.select_related("user")),
        "notify_choices": AgentProfile.NotifyVia.choices,
    }


def _preview(handoff: str, takeover: str) -> dict:
    return {
        "handoff": crm_services.fill_template(handoff, wait_minutes=PREVIEW_WAIT_MINUTES),
        "takeover": crm_services.fill_template(takeover, agent_name=PREVIEW_AGENT),
        "agent_name": PREVIEW_AGENT,
    }


@manager_required
@require_GET
def settings_page(request):
    return render_page(request, "crm/settings/settings.html", settings_context(), nav="settings")


@manager_required
@require_POST
def preview_messages(request):
    """What the customer would see, as the manager types (htmx, no save)."""
    return render(
        request,
        "crm/settings/_preview.html",
        {
            "preview": _preview(
                request.POST.get("handoff_message", "")[:2000],
                request.POST.get("takeover_message", "")[:2000],
            )
        },
    )


@manager_required
@require_POST
@maps_domain_errors
def save_messages(request):
    form = MessagesSettingsForm(request.POST)
    if not form.is_valid():
        return render_page(
            request,
            "crm/settings/settings.html",
            settings_context(messages_form=form),
            nav="settings",
            status=400,
        )
    crm_services.update_crm_settings(**form.cleaned_data)
    messages.success(request, _("Handoff and takeover messages saved."))
    return redirect("crm:settings")


@manager_required
@require_POST
@maps_domain_errors
def save_agent_preferences(request, profile_id: int):
    profile = AgentProfile.objects.filter(pk=profile_id).first()
    if profile is None:
        raise Http404
    form = AgentPreferencesForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose how this agent is notified."))
        return redirect("crm:settings")
    crm_services.update_agent_preferences(
        profile=profile,
        notify_via=form.cleaned_data["notify_via"],
        availability=form.cleaned_data["availability"] or None,
    )
    messages.success(request, _("Preferences of %(name)s saved.") % {"name": profile.display_name})
    return redirect("crm:settings")


@staff_required
@require_http_methods(["GET", "POST"])
@maps_domain_errors
def my_preferences(request):
    profile = AgentProfile.objects.filter(user=request.user).first()
    if profile is None:
        raise Http404
    form = AgentPreferencesForm(request.POST or None, initial={"notify_via": profile.notify_via})
    if request.method == "POST" and form.is_valid():
        crm_services.update_agent_preferences(
            profile=profile, notify_via=form.cleaned_data["notify_via"]
        )
        messages.success(request, _("Your notification preference is saved."))
        return redirect("crm:preferences")
    return render_page(
        request,
        "crm/settings/preferences.html",
        {"form": form, "profile": profile},
        nav="preferences",
        status=400 if form.errors else 200,
    )
