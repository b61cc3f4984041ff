import io

import pytest
from django.core.management import CommandError, call_command

from crm.models import Conversation
from escalation.models import Escalation

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_jamies_escalation_once(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    jamie = Conversation.objects.get(pk=4821)
    assert jamie.contact.name == "Jamie Patel"
    assert jamie.mode == Conversation.Mode.AWAITING_AGENT
    assert jamie.contact.conversations.count() == 3  # two prior chats
    escalation = Escalation.objects.get(conversation=jamie)
    assert (escalation.reason, escalation.status) == ("complexity", "queued")
    assert set(Conversation.objects.values_list("mode", flat=True)) == {
        "ai",
        "awaiting_agent",
        "agent",
        "closed",
    }
    assert Escalation.objects.filter(conversation=jamie).count() == 1


def test_seed_demo_refuses_demo_logins_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("seed_demo")
