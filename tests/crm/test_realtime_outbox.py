"""After-commit broadcasts go through the process's outbox (``crm.realtime.send_soon``): the
caller does not wait for Redis, and the events still reach their groups in the order published,
and only once the transaction commits."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import transaction

from crm import realtime

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

GROUP = "outbox-test"


async def _listen(layer):
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    return channel


async def _receive(layer, channel, count: int) -> list[dict]:
    return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]


async def _nothing_for(layer, channel, seconds: float) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), seconds)
    except TimeoutError:
        return True
    return False


def test_events_of_a_transaction_arrive_in_the_order_published():
    layer = get_channel_layer()
    assert isinstance(layer, RedisChannelLayer)  # the outbox is the Redis path
    channel = asyncio.run(_listen(layer))
    with transaction.atomic():
        for number in range(40):
            realtime.publish_on_commit(GROUP, {"type": "test.event", "number": number})
    realtime.flush_sends()
    events = asyncio.run(_receive(layer, channel, 40))
    assert [event["number"] for event in events] == list(range(40))


def test_a_rolled_back_transaction_sends_nothing():
    layer = get_channel_layer()
    channel = asyncio.run(_listen(layer))
    with pytest.raises(RuntimeError), transaction.atomic():
        realtime.publish_on_commit(GROUP, {"type": "test.event", "number": 1})
        raise RuntimeError("rolled back")
    with transaction.atomic():
        realtime.publish_on_commit(GROUP, {"type": "test.event", "number": 2})
    realtime.flush_sends()
    events = asyncio.run(_receive(layer, channel, 1))
    assert [event["number"] for event in events] == [2]
    assert asyncio.run(_nothing_for(layer, channel, 0.3))


def test_a_celery_pool_process_sends_its_events_inline(monkeypatch):
    from config.celery import _send_broadcasts_inline

    sent_inline = []
    monkeypatch.setattr(realtime, "inline_sends", False)
    monkeypatch.setattr(realtime, "send_now", lambda group, event: sent_inline.append(group))
    _send_broadcasts_inline()  # the worker_process_init handler
    with transaction.atomic():
        realtime.publish_on_commit(GROUP, {"type": "test.event", "number": 1})
    assert sent_inline == [GROUP]


async def _listen_on(layer, group: str, count: int) -> list[str]:
    channels = [await layer.new_channel() for _ in range(count)]
    for channel in channels:
        await layer.group_add(group, channel)
    return channels


def test_a_group_whose_only_member_echoed_the_event_itself_is_not_sent_it():
    """A customer socket echoes its own message: when it is alone in the conversation's group,
    the broadcast would only come back to it, to be dropped."""
    layer = get_channel_layer()
    group = f"outbox-test-alone-{uuid.uuid4().hex}"  # no member left by an earlier run
    (sender,) = asyncio.run(_listen_on(layer, group, 1))
    realtime.send_soon(group, {"type": "test.event", "number": 1}, sender_channel=sender)
    realtime.send_soon(group, {"type": "test.event", "number": 2})
    realtime.flush_sends()
    events = asyncio.run(_receive(layer, sender, 1))
    assert [event["number"] for event in events] == [2]
    assert asyncio.run(_nothing_for(layer, sender, 0.3))


def test_with_other_members_the_event_reaches_every_member_the_sender_included():
    layer = get_channel_layer()
    group = f"outbox-test-shared-{uuid.uuid4().hex}"
    sender, other = asyncio.run(_listen_on(layer, group, 2))
    realtime.send_soon(group, {"type": "test.event", "number": 1}, sender_channel=sender)
    realtime.flush_sends()
    assert [event["number"] for event in asyncio.run(_receive(layer, other, 1))] == [1]
    assert [event["number"] for event in asyncio.run(_receive(layer, sender, 1))] == [1]
