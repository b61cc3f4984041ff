"""Who hears about an escalation, and what they are told.

The escalation services call these inside their transaction; ``notifications`` stores, pushes
and emails what it is handed (it knows nothing of escalations beyond the row it links to).
"""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import AgentProfile, agent_name
from notifications import services as notification_services
from notifications.models import Notification

from .models import EscalationEvent
from .routing.clocks import describe_reopening
from .selectors import online_agents


def available_agents(team_id: int | None) -> list[AgentProfile]:
    """Active agents who are online: of the team, or everyone when there is no team."""
    return list(online_agents(team_id).select_related("user"))


def fallback_recipients(team_id: int | None) -> list[AgentProfile]:
    """When nobody is available: every active agent of the team (whatever their availability)
    and every active manager, so an escalation is never unseen. Without a team, everyone."""
    people = AgentProfile.objects.filter(user__is_active=True).select_related("user")
    if team_id:
        people = people.filter(Q(teams__id=team_id) | Q(role=AgentProfile.Role.MANAGER))
    return list(people.distinct().order_by("pk"))


def recipients_for(escalation) -> tuple[list[AgentProfile], bool]:
    """``(profiles, is_fallback)``: the available agents, or the fallback list if none."""
    available = available_agents(escalation.team_id)
    if available:
        return available, False
    return fallback_recipients(escalation.team_id), True


def alert_details(escalation) -> dict:
    """What the live alert carries, so the bell and the toast need no query."""
    return {
        "escalation": escalation.pk,
        "conversation": escalation.conversation_id,
        "contact": str(escalation.conversation.contact),
        "reason": escalation.reason,
        "reason_label": str(escalation.get_reason_display()),
        "priority": escalation.priority_code,
        "priority_label": str(escalation.get_priority_display()),
        "after_hours": bool(
            escalation.after_hours_until and escalation.after_hours_until > timezone.now()
        ),
    }


def _alert(
    escalation, *, kind: str, dedupe_key: str, text: str, key_is_new: bool = False
) -> list[Notification]:
    recipients, is_fallback = recipients_for(escalation)
    return notification_services.notify_people(
        recipients=recipients,
        is_fallback=is_fallback,
        kind=kind,
        dedupe_key=dedupe_key,
        text=text,
        escalation=escalation,
        details=alert_details(escalation),
        key_is_new=key_is_new,
    )


@transaction.atomic(savepoint=False)  # inside the handoff's transaction: no savepoint of its own
def notify_agents_of_escalation(*, escalation, is_new: bool = False) -> list[Notification]:
    """One notification per available agent of the escalation's team (every available agent
    when it has no team; the team's agents and the managers by email when nobody is available),
    in-app and/or email as each prefers. Idempotent per (agent, time in the queue): a second call
    adds nothing, a hop back to the queue notifies again. ``is_new``: the escalation was created
    in this transaction, so it has never been released and nobody was told under its key (no
    query to count its releases, none to look for earlier notifications)."""
    releases = 0 if is_new else escalation.events.filter(kind=EscalationEvent.Kind.RELEASED).count()
    key = f"escalation:{escalation.pk}" + (f":{releases}" if releases else "")
    text = _("%(contact)s needs an agent: %(reason)s, %(priority)s priority") % {
        "contact": escalation.conversation.contact,
        "reason": escalation.get_reason_display(),
        "priority": escalation.get_priority_display().lower(),
    }
    if escalation.after_hours_until and escalation.after_hours_until > timezone.now():
        text += " " + _("(after hours: the team is back %(when)s)") % {
            "when": describe_reopening(escalation.team, escalation.after_hours_until)
        }
    if escalation.short_summary:  # the handoff card in one line: what it is about, the mood
        text = f"{text} — {escalation.short_summary}"
    text = text if len(text) <= 500 else text[:499] + "…"
    return _alert(
        escalation,
        kind=Notification.Kind.ESCALATION,
        dedupe_key=key,
        text=text,
        key_is_new=is_new,
    )


@transaction.atomic
def notify_agents_of_reminder(*, escalation) -> list[Notification]:
    """Re-notify that an escalation is still waiting past its target: one notification per
    recipient per reminder, to the same people an escalation would reach."""
    # The escalation service logs the REMINDED event before calling: its count numbers reminders.
    number = escalation.events.filter(kind=EscalationEvent.Kind.REMINDED).count()
    waited = max(1, int((timezone.now() - escalation.escalated_at).total_seconds() // 60))
    text = _("Still waiting after %(minutes)d min: %(contact)s, now %(priority)s priority") % {
        "minutes": waited,
        "contact": escalation.conversation.contact,
        "priority": escalation.get_priority_display().lower(),
    }
    return _alert(
        escalation,
        kind=Notification.Kind.REMINDER,
        dedupe_key=f"reminder:{escalation.pk}:{number}",
        text=text,
    )


# What an alert ("Jamie Patel needs an agent") says once its escalation has moved on.
OUTCOMES = {
    "taken": gettext_lazy("Taken by %(name)s"),
    "assigned": gettext_lazy("Assigned to %(name)s"),
    "resolved": gettext_lazy("Resolved by %(name)s"),
    "handed_back": gettext_lazy("Handed back to the AI by %(name)s"),
    "closed": gettext_lazy("Closed by %(name)s"),
    "cancelled": gettext_lazy("Cancelled: the customer left"),
}


def settle_alerts(*, escalation, what: str, by=None) -> int:
    """The escalation left the queue or ended (``what``: a key of OUTCOMES, ``by`` the agent):
    everyone alerted about it sees what happened, live, and the alert stops counting as
    unread. Call inside the escalation's transaction; the push happens after commit."""
    outcome = str(OUTCOMES[what]) % {"name": agent_name(by) if by is not None else ""}
    return notification_services.settle_alerts(escalation_id=escalation.pk, outcome=outcome)
