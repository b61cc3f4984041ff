"""Whom routing tells, and what: the agent offered or assigned an escalation, an agent set away
for missed offers, the managers when an SLA is breached."""

from django.utils.translation import gettext as _

from crm.models import AgentProfile
from notifications import services as notification_services
from notifications.models import Notification

from ..alerts import alert_details


def _tell(profiles, *, escalation, kind, key, text, allow_email=True):
    return notification_services.notify_people(
        recipients=list(profiles),
        is_fallback=False,
        allow_email=allow_email,
        kind=kind,
        dedupe_key=key,
        text=text,
        escalation=escalation,
        details={
            **alert_details(escalation),
            "offer_expires_at": _iso(escalation.offer_expires_at),
        },
    )


def _iso(value):
    return value.isoformat() if value else None


def notify_agent_of_offer(*, escalation, profile, number: int):
    text = _("Offered to you: %(contact)s, %(reason)s — accept within %(seconds)d s") % {
        "contact": escalation.conversation.contact,
        "reason": escalation.get_reason_display(),
        "seconds": escalation.team.routing.accept_timeout_seconds,
    }
    return _tell(
        [profile],
        escalation=escalation,
        kind=Notification.Kind.OFFERED,
        key=f"offer:{escalation.pk}:{number}",
        text=text,
        allow_email=False,
    )


def notify_agent_of_assignment(*, escalation, profile, number: int):
    text = _("Assigned to you: %(contact)s, %(reason)s") % {
        "contact": escalation.conversation.contact,
        "reason": escalation.get_reason_display(),
    }
    return _tell(
        [profile],
        escalation=escalation,
        kind=Notification.Kind.ASSIGNED,
        key=f"assigned:{escalation.pk}:{number}",
        text=text,
    )


def notify_agent_set_away(*, escalation, profile, missed: int, number: int):
    text = _(
        "You were set to Away after missing %(missed)d offers in a row, so customers are not "
        "kept waiting. Set yourself Online when you are back."
    ) % {"missed": missed}
    return _tell(
        [profile],
        escalation=escalation,
        kind=Notification.Kind.SET_AWAY,
        key=f"away:{escalation.pk}:{number}",
        text=text,
    )


def notify_managers_of_sla_breach(*, escalation):
    managers = AgentProfile.objects.filter(
        role=AgentProfile.Role.MANAGER, user__is_active=True
    ).select_related("user")
    text = _("SLA breached: %(contact)s has waited past the %(priority)s target%(team)s") % {
        "contact": escalation.conversation.contact,
        "priority": escalation.get_priority_display().lower(),
        "team": f" ({escalation.team.name})" if escalation.team_id else "",
    }
    return _tell(
        managers,
        escalation=escalation,
        kind=Notification.Kind.SLA_BREACHED,
        key=f"sla:{escalation.pk}",
        text=text,
    )
