"""A finished escalation must not act on a conversation that a newer escalation now drives,
and a released escalation starts its reminder clock again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Conversation
from escalation import services
from escalation.errors import InvalidTransition
from escalation.models import Escalation, Priority
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def escalate(conversation):
    escalation, _ = services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.HIGH,
        triggered_by=Escalation.Trigger.AGENT,
    )
    return escalation


@pytest.fixture
def second_escalation_claimed_by_alex(conversation, agent, other_agent):
    first = escalate(conversation)
    services.take_over_escalation(escalation_id=first.pk, agent=agent)
    services.hand_back_to_ai(escalation_id=first.pk, agent=agent)
    second = escalate(conversation)
    services.take_over_escalation(escalation_id=second.pk, agent=other_agent)
    return first, second


def test_handing_back_an_old_escalation_cannot_take_the_chat_from_its_new_agent(
    second_escalation_claimed_by_alex, conversation, agent, other_agent
):
    first, second = second_escalation_claimed_by_alex
    with pytest.raises(InvalidTransition, match="newer escalation"):
        services.hand_back_to_ai(escalation_id=first.pk, agent=agent)
    conversation.refresh_from_db()
    assert (conversation.mode, conversation.assigned_agent) == (
        Conversation.Mode.AGENT,
        other_agent,
    )


def test_closing_an_old_escalation_cannot_close_a_conversation_with_an_open_one(
    second_escalation_claimed_by_alex, conversation, agent
):
    first, second = second_escalation_claimed_by_alex
    with pytest.raises(InvalidTransition, match="newer escalation"):
        services.close_escalation(escalation_id=first.pk, agent=agent, reason="done")
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AGENT
    second.refresh_from_db()
    assert second.status == Escalation.Status.CLAIMED


def test_a_released_escalation_is_not_overdue_the_moment_it_is_back(conversation, agent):
    AgentFactory(display_name="Sam")
    escalation = escalate(conversation)
    Escalation.objects.filter(pk=escalation.pk).update(
        escalated_at=timezone.now() - timedelta(hours=1)
    )
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    services.reassign_escalation(escalation_id=escalation.pk, actor=agent)

    assert services.remind_overdue_escalation(escalation_id=escalation.pk) is False
    later = timezone.now() + timedelta(hours=1)
    assert services.remind_overdue_escalation(escalation_id=escalation.pk, now=later) is True
