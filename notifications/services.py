"""Who hears about an escalation, and how. Called by the escalation services."""

from django.db import transaction

from crm import realtime
from crm.models import AgentProfile

from .models import Notification


def available_agents(team_id: int | None):
    agents = AgentProfile.objects.filter(
        availability=AgentProfile.Availability.ONLINE, user__is_active=True
    ).select_related("user")
    if team_id:
        agents = agents.filter(teams__id=team_id)
    return list(agents)


@transaction.atomic
def notify_agents_of_escalation(*, escalation) -> list[Notification]:
    """One in-app notification per available agent of the escalation's team, pushed after
    commit. Idempotent per (agent, escalation)."""
    contact = escalation.conversation.contact
    text = f"{contact} needs an agent: {escalation.get_reason_display()} ({escalation.priority_code})"
    link = f"/crm/conversations/{escalation.conversation_id}/"
    created = []
    for profile in available_agents(escalation.team_id):
        notification, is_new = Notification.objects.get_or_create(
            recipient=profile.user,
            dedupe_key=f"escalation:{escalation.pk}",
            defaults={
                "kind": Notification.Kind.ESCALATION,
                "escalation": escalation,
                "text": text,
                "link": link,
                "show_in_app": profile.wants_in_app,
                "email_requested": profile.wants_email,
            },
        )
        if is_new:
            created.append(notification)
            realtime.publish_to_agent(
                profile.user_id,
                {
                    "type": "notification.created",
                    "notification": {"id": notification.id, "text": text, "link": link},
                },
            )
    return created


@transaction.atomic
def notify_agents_of_reminder(*, escalation) -> list[Notification]:
    """Re-notify available agents that an escalation is still waiting (one per reminder)."""
    contact = escalation.conversation.contact
    text = f"Still waiting: {contact} ({escalation.priority_code})"
    link = f"/crm/conversations/{escalation.conversation_id}/"
    stamp = int(escalation.last_reminded_at.timestamp())
    created = []
    for profile in available_agents(escalation.team_id):
        notification, is_new = Notification.objects.get_or_create(
            recipient=profile.user,
            dedupe_key=f"reminder:{escalation.pk}:{stamp}",
            defaults={
                "kind": Notification.Kind.REMINDER,
                "escalation": escalation,
                "text": text,
                "link": link,
                "show_in_app": profile.wants_in_app,
                "email_requested": profile.wants_email,
            },
        )
        if is_new:
            created.append(notification)
            realtime.publish_to_agent(
                profile.user_id,
                {
                    "type": "notification.created",
                    "notification": {"id": notification.id, "text": text, "link": link},
                },
            )
    return created
