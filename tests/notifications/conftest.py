import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from crm import realtime
from crm.models import AgentProfile
from escalation import services as escalation_services
from escalation.models import Priority
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory

IN_APP = AgentProfile.NotifyVia.IN_APP
EMAIL = AgentProfile.NotifyVia.EMAIL
BOTH = AgentProfile.NotifyVia.BOTH
ONLINE = AgentProfile.Availability.ONLINE
AWAY = AgentProfile.Availability.AWAY
OFFLINE = AgentProfile.Availability.OFFLINE


@pytest.fixture
def team(db):
    return TeamFactory(name="Billing", target_wait_seconds=60)


@pytest.fixture
def make_agent(db):
    def make(username, *, teams=(), notify_via=IN_APP, availability=ONLINE, **fields):
        return AgentFactory(
            username=username,
            display_name=username.title(),
            teams=teams,
            notify_via=notify_via,
            availability=availability,
            **fields,
        )

    return make


@pytest.fixture
def escalate(db):
    """Escalate a new conversation of ``team`` (commit callbacks run: pushes, email tasks)."""

    def run(team=None, *, contact_name="Jamie Patel", priority=Priority.NORMAL, reason="request"):
        channel = ChannelFactory(default_team=team)
        conversation = ConversationFactory(channel=channel, contact__name=contact_name)
        escalation, created = escalation_services.escalate_conversation(
            conversation=conversation,
            reason=reason,
            priority=priority,
            triggered_by="detection",
            summary="Customer was charged twice for order 1042 and wants a refund.",
        )
        assert created
        return escalation

    return run


class AgentSocket:
    """An agent's socket group on the channel layer, read without a WebSocket."""

    def __init__(self, user):
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(realtime.agent_group(user.pk), self.channel)

    def receive_all(self, timeout=0.2) -> list[dict]:
        import asyncio

        async def drain():
            events = []
            while True:
                try:
                    events.append(await asyncio.wait_for(self.layer.receive(self.channel), timeout))
                except TimeoutError:
                    return events

        return async_to_sync(drain)()


@pytest.fixture
def socket_of():
    return AgentSocket
