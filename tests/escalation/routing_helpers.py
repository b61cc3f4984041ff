"""Builders shared by the routing tests."""

from datetime import timedelta

from django.utils import timezone

from crm.models import AgentProfile
from escalation import services
from escalation.models import Escalation, Priority, TeamRouting
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory


def automatic_team(name="Orders", **routing):
    team = TeamFactory(name=name)
    TeamRouting.objects.create(team=team, mode=TeamRouting.Mode.AUTOMATIC, **routing)
    return team


def team_agents(team, count, *, capacity=2, prefix="Agent"):
    return [
        AgentFactory(display_name=f"{prefix} {team.name} {i}", teams=[team], capacity=capacity)
        for i in range(count)
    ]


def closed_all_week_but(team, *, day_offset: int):
    """The team opens only on a weekday several days away (so it is closed now)."""
    day = (timezone.now() + timedelta(days=day_offset)).strftime("%a").lower()
    TeamRouting.objects.create(
        team=team,
        time_zone="UTC",
        weekly_hours=[{"day": day, "opens": "09:00", "closes": "17:00"}],
    )


def conversation_for(team):
    return ConversationFactory(channel=ChannelFactory(default_team=team))


def escalate(conversation, *, priority=Priority.NORMAL, reason="request", signals=None):
    escalation, _created = services.escalate_conversation(
        conversation=conversation,
        reason=reason,
        priority=priority,
        triggered_by=Escalation.Trigger.DETECTION,
        signals=signals,
    )
    return escalation


def load_of(user) -> int:
    from escalation.routing.selectors import agent_load

    return agent_load(user.pk)


def availability_of(user) -> str:
    return AgentProfile.objects.get(user=user).availability
