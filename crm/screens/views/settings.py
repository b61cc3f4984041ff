"""Settings for managers: the messages customers read, per language, with a live preview;
each assistant's Agent Framework section (``agent_framework.py``); each agent's notification
preference. Agents edit their own preference."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import customer_texts
from crm import services as crm_services
from crm.customer_texts import KINDS
from crm.models import AgentProfile, Assistant

from ..access import manager_required, staff_required
from ..errors import maps_domain_errors
from ..forms import AgentPreferencesForm, CustomerTextsForm
from .agent_framework import assistant_form, latest_replay_jobs
from .base import render_page


def texts_language(value) -> str:
    return value if value in customer_texts.LANGUAGES else customer_texts.FALLBACK


def settings_context(*, texts_form=None, language: str = "en", assistant_forms=None):
    texts_form = texts_form or CustomerTextsForm(language=language)
    assistants = list(Assistant.objects.all())
    replay_jobs = latest_replay_jobs()
    assistant_forms = assistant_forms or {}
    return {
        "texts_form": texts_form,
        "texts_language": texts_form.language,
        "languages": list(customer_texts.LANGUAGE_NAMES.items()),
        "preview": _preview(texts_form),
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


def _preview(form: CustomerTextsForm) -> list[tuple[str, str]]:
    """Each text as the customer would read it, with sample values (typed text if any)."""
    values = customer_texts.sample_values(form.language)
    rows = []
    for kind in customer_texts.KINDS:
        typed = form[kind.code].value() if form.is_bound else None
        text = (typed or "").strip()[: customer_texts.MAX_CHARS] or form.fields[kind.code].initial
        rows.append((kind.label, customer_texts.fill(text, **values)))
    return rows


@manager_required
@require_GET
def settings_page(request):
    language = texts_language(request.GET.get("texts"))
    return render_page(
        request, "crm/settings/settings.html", settings_context(language=language), nav="settings"
    )


@manager_required
@require_POST
def preview_messages(request):
    """What the customer would see, as the manager types (htmx, no save)."""
    form = CustomerTextsForm(request.POST, language=texts_language(request.POST.get("language")))
    return render(request, "crm/settings/_preview.html", {"preview": _preview(form)})


@manager_required
@require_POST
@maps_domain_errors
def save_messages(request):
    language = request.POST.get("language")
    if language not in customer_texts.LANGUAGES:
        return render_page(
            request,
            "crm/settings/settings.html",
            {**settings_context(), "texts_error": _("Choose one of the languages listed.")},
            nav="settings",
            status=400,
        )
    form = CustomerTextsForm(request.POST, language=language)
    if not form.is_valid():
        return render_page(
            request,
            "crm/settings/settings.html",
            settings_context(texts_form=form),
            nav="settings",
            status=400,
        )
    crm_services.update_customer_texts(
        language=language, texts={kind.code: form.cleaned_data[kind.code] for kind in KINDS}
    )
    messages.success(
        request,
        _("Messages to customers in %(language)s saved.")
        % {"language": customer_texts.LANGUAGE_NAMES[language]},
    )
    return redirect(f"{reverse('crm:settings')}?texts={language}#customer-texts")


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
