import pytest

from crm.models import AgentProfile
from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from tests.factories import AgentFactory, ConversationFactory, TeamFactory


@pytest.fixture
def manager(db):
    return AgentFactory(display_name="Morgan", username="morgan", role=AgentProfile.Role.MANAGER)


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def escalate(db):
    """Escalate a fresh (or given) conversation through the real service."""

    def make(
        conversation=None,
        *,
        reason="request",
        priority="normal",
        detail="",
        team=None,
        contact_name=None,
        **conversation_fields,
    ):
        if conversation is None:
            if contact_name:
                conversation_fields["contact__name"] = contact_name
            conversation = ConversationFactory(**conversation_fields)
            if team is not None:
                conversation.team = team
                conversation.save(update_fields=["team"])
        escalation, _created = escalation_services.escalate_conversation(
            conversation=conversation,
            reason=reason,
            priority=Priority.from_code(priority),
            triggered_by=Escalation.Trigger.DETECTION,
            detail=detail,
            summary="Customer wants a refund of a duplicate charge.",
        )
        return escalation

    return make


@pytest.fixture
def team(db):
    return TeamFactory(name="Billing")
