"""The agent's socket against the real ASGI application: staff-only login, queue events,
notifications, open conversations (messages, typing, replay) and replies through the service."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from config.asgi import application
from crm import services as crm_services
from crm.models import Conversation, Message
from escalation import services as escalation_services
from escalation.models import Escalation, Priority

from ..factories import AgentFactory, ChannelFactory, ConversationFactory, UserFactory
from .test_customer_socket import (  # noqa: F401 (dead_redis is a fixture)
    SITE,
    TIMEOUT,
    connect_and_drain,
    customer_socket,
    dead_redis,
    frames_until,
    refused,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await sync_to_async(connections.close_all)()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def agent_socket(user=None, *, origin=SITE):
    headers = [(b"origin", origin)] if origin else []
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, "/ws/agent/", headers=headers)


async def live_agent_socket(user):
    communicator = await agent_socket(user)
    ok, code = await communicator.connect(timeout=TIMEOUT)
    assert ok, code
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "connection.state",
        "state": "live",
    }
    return communicator


async def subscribe(agent, conversation_id, **extra):
    """Subscribe and wait until the socket has handled it (frames are handled in order, so the
    error answering a probe frame sent after it proves the subscription is in place)."""
    await agent.send_json_to({"type": "subscribe", "conversation": conversation_id, **extra})
    await agent.send_json_to({"type": "probe"})
    frames = await frames_until(agent, lambda f: f["type"] == "error")
    assert frames[-1]["code"] == "unknown_type", frames
    return frames[:-1]


@pytest.fixture
def marina(db):
    return AgentFactory(display_name="Marina", username="marina")


@pytest.fixture
def conversation(db):
    return ConversationFactory(channel=ChannelFactory())


def escalate(conversation):
    escalation, _created = escalation_services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.HIGH,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    return escalation


async def test_layer_events_reach_an_agent_socket_without_a_hop_to_the_database_thread(
    marina, conversation, monkeypatch
):
    """Channels' dispatch closes old connections on the process's one database thread before
    every event; the agent socket's database calls do that themselves, so a watched
    conversation's messages cost no hop there."""
    import channels.consumer

    hops = []

    async def counted():
        hops.append(1)

    agent = await live_agent_socket(marina)
    await subscribe(agent, conversation.pk)
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    for number in range(5):
        await sync_to_async(crm_services.receive_customer_message)(
            conversation=conversation, text=f"message {number}"
        )
    frames = await frames_until(
        agent, lambda f: f["type"] == "message.created" and f["message"]["text"] == "message 4"
    )
    assert len([f for f in frames if f["type"] == "message.created"]) >= 5
    assert hops == []
    await agent.disconnect()


async def test_without_login_or_staff_or_from_a_foreign_origin_the_socket_is_refused(marina):
    assert await refused(await agent_socket()) == 4401
    customer_user = await sync_to_async(UserFactory)(username="shopper", is_staff=False)
    assert await refused(await agent_socket(customer_user)) == 4403
    # AllowedHostsOriginValidator refuses (closes before accept, default code)
    assert await refused(await agent_socket(marina, origin=b"https://evil.example")) == 4403
    assert await refused(await agent_socket(marina, origin=None)) == 4403


async def test_the_queue_life_reaches_the_agent_added_reprioritised_claimed_by_whom_removed(
    marina, conversation
):
    alex = await sync_to_async(AgentFactory)(display_name="Alex", username="alex")
    communicator = await live_agent_socket(marina)

    escalation = await sync_to_async(escalate)(conversation)
    frames = await frames_until(communicator, lambda f: f["type"] == "queue.added")
    assert frames[-1] == {"type": "queue.added", "escalation": escalation.pk}
    # The queue event goes out first; the notification of the same commit follows.
    frames += await frames_until(communicator, lambda f: f["type"] == "notification.created")
    notifications = [f for f in frames if f["type"] == "notification.created"]
    assert len(notifications) == 1
    assert set(notifications[0]["notification"]) >= {"id", "text", "link"}

    await sync_to_async(escalation_services.escalate_conversation)(
        conversation=conversation,
        reason="sentiment",
        priority=Priority.URGENT,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    frames = await frames_until(communicator, lambda f: f["type"].startswith("queue."))
    assert frames[-1] == {"type": "queue.updated", "escalation": escalation.pk}

    await sync_to_async(escalation_services.take_over_escalation)(
        escalation_id=escalation.pk, agent=alex
    )
    frames = await frames_until(communicator, lambda f: f["type"] == "queue.claimed")
    assert frames[-1] == {
        "type": "queue.claimed",
        "escalation": escalation.pk,
        "agent_name": "Alex",
    }
    # not subscribed to the conversation: none of its messages reach this socket
    assert not [f for f in frames if f["type"] == "message.created"]

    await sync_to_async(escalation_services.resolve_escalation)(
        escalation_id=escalation.pk, agent=alex
    )
    frames = await frames_until(communicator, lambda f: f["type"].startswith("queue."))
    assert frames[-1] == {"type": "queue.removed", "escalation": escalation.pk}
    await communicator.disconnect()


async def test_take_over_then_reply_from_the_agent_socket_reaches_the_customer(
    marina, conversation
):
    escalation = await sync_to_async(escalate)(conversation)
    customer = customer_socket(conversation)
    await connect_and_drain(customer)
    agent = await live_agent_socket(marina)
    await subscribe(agent, conversation.pk)

    await sync_to_async(escalation_services.take_over_escalation)(
        escalation_id=escalation.pk, agent=marina
    )
    frames = await frames_until(
        customer, lambda f: f.get("message", {}).get("text") == "Now speaking with Marina"
    )
    assert {
        "type": "conversation.mode",
        "conversation": conversation.pk,
        "mode": "agent",
        "agent_name": "Marina",
        "resolved": False,
        "status": "Now speaking with Marina",
    } in frames
    await frames_until(customer, lambda f: f.get("message", {}).get("sender") == "agent")

    await agent.send_json_to(
        {"type": "reply", "conversation": conversation.pk, "text": "On it!", "private": False}
    )
    frames = await frames_until(customer, lambda f: f["type"] == "message.created")
    assert frames[-1]["message"]["text"] == "On it!"
    assert frames[-1]["message"]["author_name"] == "Marina"

    await agent.send_json_to(
        {"type": "reply", "conversation": conversation.pk, "text": "note to self", "private": True}
    )
    agent_frames = await frames_until(
        agent, lambda f: f.get("message", {}).get("text") == "note to self"
    )
    replies = [f["message"]["text"] for f in agent_frames if f["type"] == "message.created"]
    assert replies.count("On it!") == 1  # echoed to the sender once, not twice
    assert agent_frames[-1]["message"]["is_private_note"] is True
    assert await customer.receive_nothing(timeout=0.3)  # the note never reaches the customer

    stored = await sync_to_async(list)(
        Message.objects.filter(conversation=conversation, sender="agent").values_list(
            "text", "is_private_note"
        )
    )
    assert ("On it!", False) in stored and ("note to self", True) in stored
    await agent.disconnect()
    await customer.disconnect()


async def test_a_reply_before_take_over_is_an_error_frame_and_nothing_is_sent(marina, conversation):
    await sync_to_async(escalate)(conversation)
    agent = await live_agent_socket(marina)
    await agent.send_json_to({"type": "reply", "conversation": conversation.pk, "text": "hi"})
    frame = await agent.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and frame["code"] == "not_assigned"
    assert not await sync_to_async(
        Message.objects.filter(conversation=conversation, sender="agent").exists
    )()
    await agent.disconnect()


async def test_subscribe_with_after_replays_everything_missed_including_private_notes(
    marina, conversation
):
    def fill():
        Conversation.objects.filter(pk=conversation.pk).update(mode="agent", assigned_agent=marina)
        for text, private in (("old", False), ("new", False), ("staff only", True)):
            crm_services.send_agent_message(
                conversation=conversation, agent=marina, text=text, private_note=private
            )
        return Message.objects.get(text="old").pk

    after = await sync_to_async(fill)()
    agent = await live_agent_socket(marina)
    replayed = await subscribe(agent, conversation.pk, after=after)
    assert [f["message"]["text"] for f in replayed] == ["new", "staff only"]
    assert await agent.receive_nothing(timeout=0.2)
    await agent.disconnect()


async def test_typing_goes_both_ways_between_customer_and_the_assigned_agent(marina, conversation):
    escalation = await sync_to_async(escalate)(conversation)
    await sync_to_async(escalation_services.take_over_escalation)(
        escalation_id=escalation.pk, agent=marina
    )
    customer = customer_socket(conversation)
    await connect_and_drain(customer)
    agent = await live_agent_socket(marina)
    await subscribe(agent, conversation.pk)

    await customer.send_json_to({"type": "typing"})
    frame = await agent.receive_json_from(timeout=TIMEOUT)
    contact_name = await sync_to_async(lambda: str(conversation.contact))()
    assert frame == {
        "type": "typing",
        "conversation": conversation.pk,
        "sender": "customer",
        "name": contact_name,
    }
    assert await customer.receive_nothing(timeout=0.2)  # not echoed to the typist

    await agent.send_json_to({"type": "typing", "conversation": conversation.pk})
    frame = await customer.receive_json_from(timeout=TIMEOUT)
    assert frame == {
        "type": "typing",
        "conversation": conversation.pk,
        "sender": "agent",
        "name": "Marina",
    }
    assert await agent.receive_nothing(timeout=0.2)
    await agent.disconnect()
    await customer.disconnect()


async def test_bad_frames_on_the_agent_socket_are_error_frames(marina, conversation):
    agent = await live_agent_socket(marina)
    cases = [
        ({"type": "subscribe"}, "invalid"),
        ({"type": "subscribe", "conversation": "7"}, "invalid"),
        ({"type": "subscribe", "conversation": 999999}, "invalid"),
        ({"type": "subscribe", "conversation": conversation.pk, "after": "x"}, "invalid"),
        (
            {"type": "reply", "conversation": conversation.pk, "text": "hi", "private": "yes"},
            "invalid",
        ),
        (
            {"type": "reply", "conversation": conversation.pk, "text": " ", "private": True},
            "invalid_message",
        ),
        ({"type": "dance"}, "unknown_type"),
    ]
    for frame, code in cases:
        await agent.send_json_to(frame)
        answer = await agent.receive_json_from(timeout=TIMEOUT)
        assert answer["type"] == "error" and answer["code"] == code, (frame, answer)
    await agent.send_to(text_data="{oops")
    assert (await agent.receive_json_from(timeout=TIMEOUT))["code"] == "bad_json"
    await agent.send_to(text_data="y" * (1024 * 1024))
    assert (await agent.receive_json_from(timeout=TIMEOUT))["code"] == "frame_too_large"
    await agent.disconnect()


@pytest.mark.usefixtures("dead_redis")
async def test_with_redis_unreachable_the_agent_socket_is_degraded_but_replies_are_stored(
    marina, conversation
):
    def take_over():
        escalation_services.take_over_escalation(
            escalation_id=escalate(conversation).pk, agent=marina
        )

    await sync_to_async(take_over)()
    agent = await agent_socket(marina)
    ok, _code = await agent.connect(timeout=TIMEOUT)
    assert ok
    assert await agent.receive_json_from(timeout=TIMEOUT) == {
        "type": "connection.state",
        "state": "degraded",
    }
    await agent.send_json_to({"type": "subscribe", "conversation": conversation.pk})
    await agent.send_json_to(
        {"type": "reply", "conversation": conversation.pk, "text": "Still here"}
    )
    frames = await frames_until(agent, lambda f: f["type"] == "message.created")
    assert frames[-1]["message"]["text"] == "Still here"
    assert await sync_to_async(
        Message.objects.filter(conversation=conversation, text="Still here").exists
    )()

    # a customer message stored meanwhile is pushed from the database while degraded
    await sync_to_async(crm_services.receive_customer_message)(
        conversation=conversation, text="Thanks!"
    )
    frames = await frames_until(agent, lambda f: f["type"] == "message.created")
    assert frames[-1]["message"]["text"] == "Thanks!"
    await agent.disconnect()


async def test_a_subscribe_after_that_is_no_message_id_is_a_clear_error_frame(marina, conversation):
    agent = await live_agent_socket(marina)
    for after in ["1e400", "1.5", "-1", '"²"', '"٣"', "true", str(10**30), "[1]"]:
        await agent.send_to(
            text_data=f'{{"type": "subscribe", "conversation": {conversation.pk}, '
            f'"after": {after}}}'
        )
        answer = await agent.receive_json_from(timeout=TIMEOUT)
        assert answer["type"] == "error" and answer["code"] == "invalid", (after, answer)
        assert "after" in answer["message"], (after, answer)
    await subscribe(agent, conversation.pk, after=0)  # a good cursor still works afterwards
    await agent.disconnect()
