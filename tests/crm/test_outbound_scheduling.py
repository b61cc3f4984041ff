"""Provider replies: a broker outage at commit loses nothing — the other after-commit effects
still run, and the sweep re-queues the reply later."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm import realtime, services
from crm.models import Message
from integrations import tasks
from tests.factories import ChannelFactory, ConversationFactory

pytestmark = pytest.mark.django_db


def broker_down(*args, **kwargs):
    raise ConnectionError("broker unreachable")


def test_a_broker_outage_does_not_cancel_the_broadcasts_after_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(channel=ChannelFactory(kind="whatsapp"))
    pushed = []
    monkeypatch.setattr(realtime, "send_soon", lambda group, event: pushed.append(group) or True)
    monkeypatch.setattr(tasks.deliver_message, "delay", broker_down)

    with django_capture_on_commit_callbacks(execute=True):
        services.post_system_message(conversation=conversation, text="One moment")
        services.post_system_message(conversation=conversation, text="Still here")

    assert pushed.count(f"conversation.{conversation.pk}") == 2
    assert Message.objects.filter(delivery_status=Message.Delivery.PENDING).count() == 2


def test_the_sweep_requeues_only_replies_stuck_past_their_retry_window(monkeypatch):
    conversation = ConversationFactory(channel=ChannelFactory(kind="whatsapp"))
    queued = []
    monkeypatch.setattr(tasks.deliver_message, "delay", queued.append)
    monkeypatch.setattr(tasks.deliver_message, "apply_async", lambda *a, **k: None)
    fresh = services.post_system_message(conversation=conversation, text="fresh")
    stuck = services.post_system_message(conversation=conversation, text="stuck")
    Message.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=1))
    queued.clear()

    assert tasks.resend_stuck_deliveries() == 1
    assert queued == [stuck.pk]
    assert fresh.pk not in queued
