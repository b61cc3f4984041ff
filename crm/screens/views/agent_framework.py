"""Settings → Agent Framework, per assistant: the handoff switch, sensitivity (with a preview of
the predicted escalation rate before saving), always-human topics, the backend and its Claude
band; the replay of stored conversations (a job the page polls); and the agents' one-click
"Was handing this over needed?" beside Resolve/Close."""

from datetime import timedelta

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import services as crm_services
from crm.codes import Reason
from crm.llm import claude_available
from crm.models import Assistant
from escalation import replay
from escalation import services as escalation_services
from escalation.models import Escalation, ReplayJob

from .. import charts
from ..access import manager_required, staff_required
from ..errors import maps_domain_errors, toast_response
from ..forms import AssistantSettingsForm
from .base import render_page

PREVIEW_DAYS = 30
REPLAY_DAYS = 30
SETTING_FIELDS = (
    "handoff_enabled",
    "sensitivity",
    "backend",
    "claude_band_low",
    "claude_band_high",
    "sentiment_threshold",
    "confidence_threshold",
    "loop_threshold",
    "always_human_topics",
)


def assistant_form(assistant: Assistant, data=None) -> AssistantSettingsForm:
    return AssistantSettingsForm(
        data,
        initial={name: getattr(assistant, name) for name in SETTING_FIELDS},
        prefix=f"assistant-{assistant.pk}",
        claude_available=claude_available(),
    )


def latest_replay_jobs() -> dict[int, ReplayJob]:
    """The newest replay job of each assistant (for the Settings page)."""
    jobs = {}
    for job in ReplayJob.objects.order_by("-id")[:50]:
        jobs.setdefault(job.assistant_id, job)
    return jobs


def _assistant_or_404(assistant_id: int) -> Assistant:
    return get_object_or_404(Assistant, pk=assistant_id)


@manager_required
@require_POST
@maps_domain_errors
def save_assistant(request, assistant_id: int):
    from .settings import settings_context

    assistant = _assistant_or_404(assistant_id)
    form = assistant_form(assistant, request.POST)
    if not form.is_valid():
        return render_page(
            request,
            "crm/settings/settings.html",
            settings_context(assistant_forms={assistant.pk: form}),
            nav="settings",
            status=400,
        )
    crm_services.update_assistant_settings(assistant=assistant, **form.cleaned_data)
    messages.success(request, _("%(name)s saved.") % {"name": assistant.name})
    return redirect("crm:settings")


@manager_required
@require_POST
def preview_sensitivity(request, assistant_id: int):
    """The predicted escalation rate with the settings as typed, next to the saved settings',
    from the signals stored for the last 30 days (htmx, nothing saved)."""
    assistant = _assistant_or_404(assistant_id)
    form = assistant_form(assistant, request.POST)
    context = {"assistant": assistant, "days": PREVIEW_DAYS}
    if not form.is_valid():
        context["errors"] = [e for errors in form.errors.values() for e in errors]
        return render(request, "crm/settings/_sensitivity_preview.html", context)
    data = form.cleaned_data
    since = timezone.now() - timedelta(days=PREVIEW_DAYS)
    current = replay.predicted_rates(
        assistant=assistant, settings=replay.replay_settings(assistant), since=since
    )
    proposed = replay.predicted_rates(
        assistant=assistant,
        settings=replay.replay_settings(
            assistant,
            sensitivity=data["sensitivity"],
            sentiment_threshold=data["sentiment_threshold"],
            confidence_threshold=data["confidence_threshold"],
            loop_threshold=data["loop_threshold"],
            always_human_topics=tuple(data["always_human_topics"]),
        ),
        since=since,
    )
    change = round(100 * (proposed["rate"] - current["rate"]), 1)
    # Which reasons move: sensitivity moves the request, topic and upset heads alike.
    reasons = [
        (label, current["by_reason"].get(code, 0), proposed["by_reason"].get(code, 0))
        for code, label in Reason.choices
        if code in current["by_reason"] or code in proposed["by_reason"]
    ]
    context.update(
        current=current,
        proposed=proposed,
        reasons=reasons,
        change=change,
        current_percent=round(100 * current["rate"], 1),
        proposed_percent=round(100 * proposed["rate"], 1),
    )
    return render(request, "crm/settings/_sensitivity_preview.html", context)


def _job_context(job: ReplayJob | None) -> dict:
    context = {"job": job}
    if job is None or job.status != ReplayJob.Status.DONE:
        return context
    result = job.result
    total = result.get("conversations", 0)
    context["job_rate_percent"] = round(100 * result.get("rate", 0.0), 1)
    context["job_actual_percent"] = round(100 * result.get("actual_rate", 0.0), 1)
    reason_labels = dict(Escalation._meta.get_field("reason").choices)
    context["reason_chart"] = charts.rate_bars(
        [
            (str(reason_labels.get(code, code)), replay.rate(count, total))
            for code, count in sorted(result.get("by_reason", {}).items(), key=lambda i: -i[1])
        ]
    )
    context["channel_chart"] = charts.rate_bars(
        [
            (kind, replay.rate(row["escalated"], row["conversations"]))
            for kind, row in sorted(result.get("by_channel", {}).items())
        ]
    )
    context["samples"] = [
        {**sample, "reason_label": reason_labels.get(sample["reason"], sample["reason"])}
        for sample in result.get("samples", [])
    ]
    return context


@manager_required
@require_POST
@maps_domain_errors
def start_replay(request, assistant_id: int):
    assistant = _assistant_or_404(assistant_id)
    job = escalation_services.start_replay_job(
        assistant=assistant,
        since=timezone.now() - timedelta(days=REPLAY_DAYS),
        requested_by=request.user,
    )
    if not request.htmx:
        messages.success(request, _("Replay started."))
        return redirect("crm:settings")
    return render(request, "crm/settings/_replay_job.html", _job_context(job))


@manager_required
@require_GET
def replay_job(request, job_id: int):
    """The job's progress (polled by the page while it runs), then its results."""
    job = get_object_or_404(ReplayJob.objects.select_related("assistant"), pk=job_id)
    return render(request, "crm/settings/_replay_job.html", _job_context(job))


_VERDICT_ANSWERS = {"yes": True, "no": False}


@staff_required
@require_POST
@maps_domain_errors
def handoff_verdict(request, escalation_id: int):
    """One click after resolve or close: was handing this conversation over needed?"""
    needed = _VERDICT_ANSWERS.get(request.POST.get("needed", ""))
    if needed is None:
        return toast_response(request, _("Answer yes or no."), status=400)
    escalation = Escalation.objects.filter(pk=escalation_id).first()
    if escalation is None:
        raise Http404
    escalation_services.record_handoff_verdict(
        escalation_id=escalation.pk, needed=needed, agent=request.user
    )
    if not request.htmx:
        return redirect("crm:conversation", conversation_id=escalation.conversation_id)
    escalation.refresh_from_db()
    return render(request, "crm/conversations/_verdict.html", {"escalation": escalation})
