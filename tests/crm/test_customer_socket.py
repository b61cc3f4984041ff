"""The customer's widget socket against the real ASGI application (config.asgi.application):
AI exchange, handoff, "Now speaking with …", agent replies, replay on reconnect, and refusals."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from channels.testing import WebsocketCommunicator
from django.db import connections

from config.asgi import application
from crm import consumers, realtime
from crm import services as crm_services
from crm.models import Conversation, KnowledgeArticle, Message
from escalation import services as escalation_services
from escalation.models import Escalation, Priority

from ..factories import AgentFactory, ChannelFactory, ConversationFactory

pytestmark = pytest.mark.django_db(transaction=True)

SITE = b"http://testserver"
TIMEOUT = 10  # generous: CI machines are busy


@pytest.fixture(autouse=True)
async def close_db_connections():
    """The consumers' database thread keeps its connection; close it so the test database can
    be flushed and dropped."""
    yield
    await sync_to_async(connections.close_all)()


def customer_socket(conversation, *, token=None, after=None, origin=SITE):
    token = conversation.customer_token if token is None else token
    path = f"/ws/conversations/{conversation.pk}/?token={token}"
    if after is not None:
        path += f"&after={after}"
    headers = [(b"origin", origin)] if origin else []
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(communicator):
    ok, code = await communicator.connect(timeout=TIMEOUT)
    assert ok, f"refused with {code}"
    return communicator


async def refused(communicator) -> int:
    """Connect expecting a refusal and return its close code. A refusal accepts, then closes
    with the code (a close before accepting would reach a browser as a handshake 403); then the
    disconnect a client sends, so the consumer ends."""
    ok, _ = await communicator.connect(timeout=TIMEOUT)
    assert ok, "a refusal accepts first, so its close code reaches the browser"
    message = await communicator.receive_output(timeout=TIMEOUT)
    await communicator.disconnect()
    assert message["type"] == "websocket.close", f"expected a close, got {message}"
    return message["code"]


async def frames_until(communicator, predicate, *, limit=30):
    """Frames received up to and including the first one ``predicate`` accepts."""
    seen = []
    for _ in range(limit):
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        seen.append(frame)
        if predicate(frame):
            return seen
    raise AssertionError(f"no matching frame in {seen}")


async def connect_and_drain(communicator):
    """Connect and read the connect frames: state, replayed messages, then the mode."""
    await connected(communicator)
    return await frames_until(communicator, lambda f: f["type"] == "conversation.mode")


def texts(frames):
    return [f["message"]["text"] for f in frames if f["type"] == "message.created"]


@pytest.fixture
def agent_marina(db):
    return AgentFactory(display_name="Marina", username="marina")


@pytest.fixture
def shop_conversation(db):
    channel = ChannelFactory(allowed_origins=["https://shop.example"])
    KnowledgeArticle.objects.create(
        title="Opening hours",
        body="Our support team is open Monday to Friday from 9:00 to 17:00.",
        keywords="opening hours open times support schedule",
    )
    return ConversationFactory(channel=channel)


async def test_connect_sends_state_and_mode_and_customer_exchanges_with_the_ai(shop_conversation):
    communicator = customer_socket(shop_conversation)
    first = await connect_and_drain(communicator)
    assert first[0] == {"type": "connection.state", "state": "live"}
    assert first[-1] == {
        "type": "conversation.mode",
        "conversation": shop_conversation.pk,
        "mode": "ai",
        "agent_name": "",
        "resolved": False,
        "status": "",
    }

    await communicator.send_json_to({"type": "message", "text": "What are your opening hours?"})
    frames = await frames_until(
        communicator,
        lambda f: f["type"] == "message.created" and f["message"]["sender"] == "ai",
    )
    created = [f["message"] for f in frames if f["type"] == "message.created"]
    assert [m["sender"] for m in created] == ["customer", "ai"]  # own message once, not twice
    assert created[0]["text"] == "What are your opening hours?"
    assert "Monday to Friday" in created[1]["text"]
    stored = await sync_to_async(list)(
        Message.objects.filter(conversation=shop_conversation)
        .order_by("id")
        .values_list("sender", "id")
    )
    assert stored == [("customer", created[0]["id"]), ("ai", created[1]["id"])]
    await communicator.disconnect()


async def test_handoff_takeover_and_agent_reply_reach_the_customer(shop_conversation, agent_marina):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)

    escalation, _created = await sync_to_async(escalation_services.escalate_conversation)(
        conversation=shop_conversation,
        reason="request",
        priority=Priority.HIGH,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    frames = await frames_until(
        communicator, lambda f: f["type"] == "message.created" and "wait" in f["message"]["text"]
    )
    assert {
        "type": "conversation.mode",
        "conversation": shop_conversation.pk,
        "mode": "awaiting_agent",
        "agent_name": "",
        "resolved": False,
        "status": "",
    } in frames
    assert frames[-1]["message"]["sender"] == "system"

    await sync_to_async(escalation_services.take_over_escalation)(
        escalation_id=escalation.pk, agent=agent_marina
    )
    frames = await frames_until(
        communicator, lambda f: f["type"] == "message.created" and f["message"]["sender"] == "agent"
    )
    assert {
        "type": "conversation.mode",
        "conversation": shop_conversation.pk,
        "mode": "agent",
        "agent_name": "Marina",
        "resolved": False,
        "status": "Now speaking with Marina",
    } in frames
    assert "Now speaking with Marina" in texts(frames)

    await sync_to_async(crm_services.send_agent_message)(
        conversation=shop_conversation, agent=agent_marina, text="Your refund is on its way."
    )
    await sync_to_async(crm_services.send_agent_message)(
        conversation=shop_conversation, agent=agent_marina, text="internal: VIP", private_note=True
    )
    await sync_to_async(crm_services.send_agent_message)(
        conversation=shop_conversation, agent=agent_marina, text="Anything else?"
    )
    frames = await frames_until(
        communicator, lambda f: f.get("message", {}).get("text") == "Anything else?"
    )
    assert texts(frames) == ["Your refund is on its way.", "Anything else?"]  # no private note
    reply = frames[0]["message"]
    assert reply["sender"] == "agent" and reply["author_name"] == "Marina"
    await communicator.disconnect()


async def test_reconnect_with_after_replays_exactly_the_missed_messages(
    shop_conversation, agent_marina
):
    def fill():
        Conversation.objects.filter(pk=shop_conversation.pk).update(
            mode="agent", assigned_agent=agent_marina
        )
        conversation = Conversation.objects.get(pk=shop_conversation.pk)
        crm_services.receive_customer_message(conversation=conversation, text="first")
        for text in ("seen 1", "missed 1", "missed 2"):
            crm_services.send_agent_message(
                conversation=conversation, agent=agent_marina, text=text
            )
        crm_services.send_agent_message(
            conversation=conversation, agent=agent_marina, text="note", private_note=True
        )
        crm_services.send_agent_message(
            conversation=conversation, agent=agent_marina, text="missed 3"
        )
        return list(
            Message.objects.filter(conversation=conversation)
            .order_by("id")
            .values_list("id", "text")
        )

    rows = await sync_to_async(fill)()
    seen_up_to = dict((text, id_) for id_, text in rows)["seen 1"]

    communicator = customer_socket(shop_conversation, after=seen_up_to)
    frames = await connect_and_drain(communicator)
    assert texts(frames) == ["missed 1", "missed 2", "missed 3"]
    ids = [f["message"]["id"] for f in frames if f["type"] == "message.created"]
    assert ids == sorted(ids)
    assert frames[-1]["mode"] == "agent" and frames[-1]["agent_name"] == "Marina"
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()

    # without after: the whole customer-visible history, private notes left out
    communicator = customer_socket(shop_conversation)
    frames = await connect_and_drain(communicator)
    assert texts(frames) == ["first", "seen 1", "missed 1", "missed 2", "missed 3"]
    await communicator.disconnect()


async def test_a_token_for_another_conversation_is_refused(shop_conversation):
    other = await sync_to_async(ConversationFactory)(channel=shop_conversation.channel)
    assert await refused(customer_socket(shop_conversation, token=other.customer_token)) == 4403
    assert await refused(customer_socket(shop_conversation, token="")) == 4403
    unknown = WebsocketCommunicator(
        application, "/ws/conversations/999999/?token=x", headers=[(b"origin", SITE)]
    )
    assert await refused(unknown) == 4403


async def test_a_foreign_origin_is_refused_and_the_channels_own_origin_accepted(shop_conversation):
    assert await refused(customer_socket(shop_conversation, origin=b"https://evil.example")) == 4403
    assert await refused(customer_socket(shop_conversation, origin=None)) == 4403
    communicator = customer_socket(shop_conversation, origin=b"https://shop.example")
    await connect_and_drain(communicator)
    await communicator.disconnect()


async def test_a_bad_after_cursor_is_refused(shop_conversation):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/conversations/{shop_conversation.pk}/?token={shop_conversation.customer_token}"
        "&after=abc",
        headers=[(b"origin", SITE)],
    )
    assert await refused(communicator) == 4400


async def test_garbage_is_answered_with_error_frames_and_the_socket_stays_usable(
    shop_conversation,
):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    cases = [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        (json.dumps({"text": "no type"}), "bad_frame"),
        (json.dumps({"type": "shout"}), "unknown_type"),
        (json.dumps({"type": "message", "text": ""}), "invalid_message"),
        (json.dumps({"type": "message", "text": 42}), "invalid_message"),
        (json.dumps({"type": "message", "text": "x" * 4001}), "invalid_message"),
        ("x" * (1024 * 1024), "frame_too_large"),
    ]
    for raw, code in cases:
        await communicator.send_to(text_data=raw)
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        assert frame["type"] == "error" and frame["code"] == code, (raw[:40], frame)
        assert frame["message"]
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["code"] == "unsupported_frame"

    count = await sync_to_async(Message.objects.filter(conversation=shop_conversation).count)()
    assert count == 0  # nothing invalid was stored
    await communicator.send_json_to({"type": "message", "text": "still here"})
    frames = await frames_until(communicator, lambda f: f["type"] == "message.created")
    assert frames[-1]["message"]["text"] == "still here"
    await communicator.disconnect()


async def test_the_per_connection_rate_limit_answers_with_an_error_frame(
    shop_conversation, settings
):
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "SOCKET_RATE_LIMIT": 3}
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    for _ in range(3):
        await communicator.send_json_to({"type": "typing"})
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.send_json_to({"type": "message", "text": "over the limit"})
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and frame["code"] == "rate_limited"
    count = await sync_to_async(Message.objects.filter(conversation=shop_conversation).count)()
    assert count == 0

    # another connection has its own allowance
    second = customer_socket(shop_conversation)
    await connect_and_drain(second)
    await second.send_json_to({"type": "message", "text": "fine"})
    frames = await frames_until(second, lambda f: f["type"] == "message.created")
    assert frames[-1]["message"]["text"] == "fine"
    await communicator.disconnect()
    await second.disconnect()


async def test_an_unknown_socket_path_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/nope/", headers=[(b"origin", SITE)])
    assert await refused(communicator) == 4404


@pytest.mark.redis
async def test_on_redis_an_event_published_by_another_process_reaches_the_socket(
    shop_conversation,
):
    from channels.layers import get_channel_layer
    from channels_redis.core import RedisChannelLayer

    assert isinstance(get_channel_layer(), RedisChannelLayer)
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)

    # A Celery worker is another process: a plain thread has its own event loop and its own
    # Redis connections, so the event crosses Redis to reach this socket.
    def worker():
        conversation = Conversation.objects.get(pk=shop_conversation.pk)
        crm_services.post_system_message(conversation=conversation, text="from a worker")
        connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    await sync_to_async(thread.join)()
    frames = await frames_until(communicator, lambda f: f["type"] == "message.created")
    assert frames[-1]["message"]["text"] == "from a worker"
    await communicator.disconnect()


@pytest.mark.redis
async def test_on_redis_a_lone_socket_is_not_sent_back_its_own_message_a_second_socket_is(
    shop_conversation, monkeypatch
):
    """The sender echoes its own message; the conversation's broadcast skips the group when the
    sender is its only socket, and reaches every socket when there are others."""
    layer_events = []
    forward = consumers.CustomerConsumer.message_created

    async def counted(self, event):
        layer_events.append((self.channel_name, event["message"]["text"]))
        await forward(self, event)

    monkeypatch.setattr(consumers.CustomerConsumer, "message_created", counted)
    first = customer_socket(shop_conversation)
    await connect_and_drain(first)
    await first.send_json_to({"type": "message", "text": "alone", "client_id": "a1"})
    alone = await frames_until(first, ack_for("a1"))
    second = customer_socket(shop_conversation)
    await connect_and_drain(second)
    await second.send_json_to({"type": "message", "text": "together", "client_id": "t1"})
    await frames_until(second, ack_for("t1"))
    # The first socket's events come in order on one channel: "together" after any "alone".
    together = await frames_until(
        first, lambda f: f["type"] == "message.created" and f["message"]["text"] == "together"
    )

    assert texts(alone).count("alone") == 1 and "alone" not in texts(together)
    assert [text for _, text in layer_events if text == "alone"] == []
    assert [text for _, text in layer_events if text == "together"] == ["together", "together"]
    await first.disconnect()
    await second.disconnect()


class FlakyLayer(InMemoryChannelLayer):
    """An in-memory layer that fails like an unreachable Redis while ``broken`` is set."""

    broken = True

    def _check(self):
        if FlakyLayer.broken:
            raise ConnectionError("layer down (test)")

    async def group_add(self, group, channel):
        self._check()
        return await super().group_add(group, channel)

    async def group_send(self, group, message):
        self._check()
        return await super().group_send(group, message)

    async def receive(self, channel):
        self._check()
        return await super().receive(channel)


@pytest.fixture
def dead_redis(settings, monkeypatch):
    """The channel layer points at a Redis port where nothing listens."""
    with socket.socket() as probe:  # a free port: bound, then released
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    monkeypatch.setattr(consumers, "LAYER_RETRY_SECONDS", 0.2)


async def test_with_redis_unreachable_the_socket_stays_open_degraded_and_messages_are_stored(
    shop_conversation, dead_redis
):
    communicator = customer_socket(shop_conversation)
    ok, _code = await communicator.connect(timeout=TIMEOUT)
    assert ok
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "connection.state",
        "state": "degraded",
    }
    await frames_until(communicator, lambda f: f["type"] == "conversation.mode")

    await communicator.send_json_to({"type": "message", "text": "What are your opening hours?"})
    frames = await frames_until(
        communicator, lambda f: f["type"] == "message.created" and f["message"]["sender"] == "ai"
    )
    created = [f["message"] for f in frames if f["type"] == "message.created"]
    # its own message echoed at once; the AI's answer pushed from the database while degraded
    assert [m["sender"] for m in created] == ["customer", "ai"]
    stored = await sync_to_async(list)(
        Message.objects.filter(conversation=shop_conversation).values_list("sender", flat=True)
    )
    assert sorted(stored) == ["ai", "customer"]
    assert await communicator.receive_nothing(timeout=0.5)  # no duplicates from later polls
    await communicator.disconnect()


async def test_when_the_layer_comes_back_the_socket_says_live_and_gets_events_again(
    shop_conversation, settings, monkeypatch
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.FlakyLayer"}}
    monkeypatch.setattr(consumers, "LAYER_RETRY_SECONDS", 0.2)
    monkeypatch.setattr(FlakyLayer, "broken", True)
    communicator = customer_socket(shop_conversation)
    await connected(communicator)
    frames = await frames_until(communicator, lambda f: f["type"] == "conversation.mode")
    assert frames[0] == {"type": "connection.state", "state": "degraded"}

    FlakyLayer.broken = False
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame == {"type": "connection.state", "state": "live"}
    await sync_to_async(realtime.send_now)(
        realtime.conversation_group(shop_conversation.pk),
        {
            "type": "conversation.mode",
            "conversation": shop_conversation.pk,
            "mode": "closed",
            "agent_name": "",
            "resolved": False,
        },
    )
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "conversation.mode" and frame["mode"] == "closed"
    await communicator.disconnect()


@pytest.fixture
def private_redis(settings, monkeypatch):
    """A Redis server of this test's own, so it can be stopped and started again."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true must run this test, but redis-server is not installed")
        pytest.skip("needs the redis-server binary")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Server:
        process = None

        def start(self):
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
            )
            for _ in range(50):
                with socket.socket() as client:
                    if client.connect_ex(("127.0.0.1", port)) == 0:
                        return
                time.sleep(0.05)
            raise AssertionError("redis-server did not start")

        def stop(self):
            if self.process is not None:
                self.process.terminate()
                self.process.wait(timeout=10)
                self.process = None

    server = Server()
    server.start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    monkeypatch.setattr(consumers, "LAYER_RETRY_SECONDS", 0.3)
    yield server
    server.stop()


@pytest.mark.redis
async def test_a_redis_restart_under_an_open_socket_degrades_then_recovers_without_losing_messages(
    shop_conversation, private_redis
):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)

    await sync_to_async(private_redis.stop)()
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "connection.state",
        "state": "degraded",
    }
    post = sync_to_async(crm_services.post_system_message)
    await post(conversation=shop_conversation, text="during the outage")
    frame = await communicator.receive_json_from(timeout=TIMEOUT)  # pushed from the database
    assert frame["message"]["text"] == "during the outage"

    await sync_to_async(private_redis.start)()
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "connection.state",
        "state": "live",
    }
    await post(conversation=shop_conversation, text="after the outage")
    frame = await communicator.receive_json_from(timeout=TIMEOUT)  # through Redis again
    assert frame["message"]["text"] == "after the outage"
    assert await communicator.receive_nothing(timeout=0.5)  # no flapping, no duplicates
    await communicator.disconnect()


@pytest.mark.parametrize("after", ["%C2%B2", "%D9%A3", "-1", "1.5", "9" * 19])
async def test_an_after_cursor_that_is_not_plain_digits_is_refused(shop_conversation, after):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/conversations/{shop_conversation.pk}/?token={shop_conversation.customer_token}"
        f"&after={after}",
        headers=[(b"origin", SITE)],
    )
    assert await refused(communicator) == 4400


async def test_replayed_and_echoed_frames_carry_no_staff_only_fields(shop_conversation):
    def fill():
        crm_services.receive_customer_message(conversation=shop_conversation, text="hello")
        crm_services.post_ai_reply(conversation=shop_conversation, text="hi!", confidence=0.37)

    await sync_to_async(fill)()
    communicator = customer_socket(shop_conversation)
    frames = await connect_and_drain(communicator)
    await communicator.send_json_to({"type": "message", "text": "Thanks"})
    frames += await frames_until(
        communicator,
        lambda f: f["type"] == "message.created" and f["message"]["text"] == "Thanks",
    )
    messages = [f["message"] for f in frames if f["type"] == "message.created"]
    assert {"hello", "hi!", "Thanks"} <= {m["text"] for m in messages}
    for message in messages:
        assert "confidence" not in message and "is_private_note" not in message, message
    await communicator.disconnect()


# --- at-least-once sending: client ids, acknowledgements, resends ------------------------------


async def stored_customer_messages(conversation):
    return await sync_to_async(list)(
        Message.objects.filter(conversation=conversation, sender="customer")
        .order_by("id")
        .values_list("id", "text", "provider_message_id")
    )


def ack_for(client_id):
    return lambda f: f["type"] == "message.created" and f.get("client_id") == client_id


async def test_a_message_sent_twice_with_one_client_id_is_stored_once_and_acked_twice(
    shop_conversation,
):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    frame = {"type": "message", "text": "Where is my order?", "client_id": "c-1_A"}
    await communicator.send_json_to(frame)
    first = (await frames_until(communicator, ack_for("c-1_A")))[-1]
    await communicator.send_json_to(frame)
    second = (await frames_until(communicator, ack_for("c-1_A")))[-1]

    assert first["message"]["text"] == "Where is my order?"
    assert second["message"] == first["message"]  # the stored one, acknowledged again
    stored = await stored_customer_messages(shop_conversation)
    assert stored == [
        (first["message"]["id"], "Where is my order?", f"widget:{shop_conversation.pk}:c-1_A")
    ]
    await communicator.disconnect()


@pytest.mark.parametrize("client_id", ["", "x" * 65, "a b", "ü", "a/b", 42, True, ["a"]])
async def test_a_bad_client_id_gets_an_error_frame_and_nothing_is_stored(
    shop_conversation, client_id
):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    await communicator.send_json_to({"type": "message", "text": "hi", "client_id": client_id})
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and frame["code"] == "invalid_client_id", frame
    assert frame["message"]
    assert await stored_customer_messages(shop_conversation) == []
    await communicator.disconnect()


async def test_a_refused_message_with_a_client_id_is_answered_with_that_id(shop_conversation):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    await communicator.send_json_to({"type": "message", "text": "", "client_id": "empty-1"})
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and frame["code"] == "invalid_message"
    assert frame["client_id"] == "empty-1"
    await communicator.disconnect()


async def test_a_socket_closed_before_the_ack_then_a_resend_on_reconnect_stores_one_message(
    shop_conversation,
):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    await communicator.send_json_to(
        {"type": "message", "text": "Sent before the line dropped", "client_id": "lost-ack"}
    )
    await communicator.disconnect()  # without reading anything: the ack never arrives

    again = customer_socket(shop_conversation, after=0)
    await connect_and_drain(again)
    await again.send_json_to(
        {"type": "message", "text": "Sent before the line dropped", "client_id": "lost-ack"}
    )
    ack = (await frames_until(again, ack_for("lost-ack")))[-1]
    stored = await stored_customer_messages(shop_conversation)
    assert [(row[0], row[1]) for row in stored] == [
        (ack["message"]["id"], "Sent before the line dropped")
    ]
    await again.disconnect()


async def test_the_same_client_id_in_another_conversation_is_another_message(shop_conversation):
    other = await sync_to_async(ConversationFactory)(channel=shop_conversation.channel)
    acks = []
    for conversation, text in ((shop_conversation, "mine"), (other, "theirs")):
        communicator = customer_socket(conversation)
        await connect_and_drain(communicator)
        await communicator.send_json_to({"type": "message", "text": text, "client_id": "same"})
        acks.append((await frames_until(communicator, ack_for("same")))[-1]["message"])
        await communicator.disconnect()
    assert [a["text"] for a in acks] == ["mine", "theirs"]  # never the other one's message
    assert [a["conversation"] for a in acks] == [shop_conversation.pk, other.pk]


@pytest.fixture
def slow_store(monkeypatch):
    """Customer message stores wait, on the process's one database thread, until the returned
    event is set: a store stuck behind a busy database."""
    release = threading.Event()
    store = consumers.store_customer_message.func

    def waiting(*args, **kwargs):
        release.wait(TIMEOUT)
        return store(*args, **kwargs)

    monkeypatch.setattr(consumers, "store_customer_message", database_sync_to_async(waiting))
    yield release
    release.set()


def off_the_database_thread(function):
    """The database thread is busy with the stuck store: run elsewhere."""
    return sync_to_async(function, thread_sensitive=False)


async def test_while_a_store_is_pending_the_socket_keeps_reading_and_forwarding(
    shop_conversation, slow_store
):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    await communicator.send_json_to({"type": "message", "text": "first", "client_id": "one"})
    await communicator.send_json_to({"type": "message", "text": "second", "client_id": "two"})
    await communicator.send_json_to({"type": "message", "text": "third", "client_id": "three"})
    await asyncio.sleep(0.3)
    # the application took every frame (a server reads on, and answers pings) ...
    assert communicator.input_queue.qsize() == 0
    # ... and still forwards group events while the store waits
    await off_the_database_thread(realtime.send_now)(
        realtime.conversation_group(shop_conversation.pk),
        {
            "type": "conversation.mode",
            "conversation": shop_conversation.pk,
            "mode": "awaiting_agent",
            "agent_name": "",
            "resolved": False,
        },
    )
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "conversation.mode" and frame["mode"] == "awaiting_agent"
    count = off_the_database_thread(
        lambda: Message.objects.filter(conversation=shop_conversation).count()
    )
    assert await count() == 0

    slow_store.set()
    frames = await frames_until(communicator, ack_for("three"))
    acks = [f["client_id"] for f in frames if f.get("client_id")]
    assert acks == ["one", "two", "three"]  # in the order sent
    assert [row[1] for row in await stored_customer_messages(shop_conversation)] == [
        "first",
        "second",
        "third",
    ]
    await communicator.disconnect()


async def test_frames_taken_before_a_disconnect_are_still_stored(shop_conversation, slow_store):
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    await communicator.send_json_to({"type": "message", "text": "queued", "client_id": "q1"})
    await asyncio.sleep(0.1)
    asyncio.get_running_loop().call_later(0.2, slow_store.set)
    await communicator.disconnect(timeout=TIMEOUT)
    assert [row[1] for row in await stored_customer_messages(shop_conversation)] == ["queued"]


# --- the message store's own threads ------------------------------------------------------------


def backends_waiting_for_a_lock() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
async def test_a_store_waiting_for_one_conversation_does_not_hold_up_another(shop_conversation):
    """Stores run on their own threads (STORE_THREADS), not one after the other on the
    process's database thread: while one conversation's row is locked, another conversation's
    message is still stored and acknowledged."""
    other = await sync_to_async(ConversationFactory)(channel=shop_conversation.channel)
    stuck, free = customer_socket(shop_conversation), customer_socket(other)
    await connect_and_drain(stuck)
    await connect_and_drain(free)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        from django.db import transaction

        with transaction.atomic():
            Conversation.objects.select_for_update().get(pk=shop_conversation.pk)
            locked.set()
            release.wait(TIMEOUT)
        connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert await off_the_database_thread(locked.wait)(TIMEOUT)
        await stuck.send_json_to({"type": "message", "text": "behind a lock", "client_id": "a"})
        for _ in range(100):  # until its store waits for the row (bounded)
            if await off_the_database_thread(backends_waiting_for_a_lock)():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the first store never waited for the locked row")
        await free.send_json_to({"type": "message", "text": "not behind it", "client_id": "b"})
        acked = (await frames_until(free, ack_for("b")))[-1]
        assert acked["message"]["text"] == "not behind it"
        assert await stored_customer_messages(shop_conversation) == []  # still waiting
    finally:
        release.set()
        await off_the_database_thread(holder.join)(TIMEOUT)
    assert (await frames_until(stuck, ack_for("a")))[-1]["message"]["text"] == "behind a lock"
    await stuck.disconnect()
    await free.disconnect()


async def test_messages_sent_at_once_are_stored_and_acked_in_the_order_sent(shop_conversation):
    """Several store threads, but one conversation's frames reach them one at a time."""
    communicator = customer_socket(shop_conversation)
    await connect_and_drain(communicator)
    sent = [f"message {n}" for n in range(8)]
    for n, text in enumerate(sent):
        await communicator.send_json_to({"type": "message", "text": text, "client_id": f"m{n}"})
    frames = await frames_until(communicator, ack_for("m7"), limit=60)
    assert [f["client_id"] for f in frames if f.get("client_id")] == [f"m{n}" for n in range(8)]
    assert [row[1] for row in await stored_customer_messages(shop_conversation)] == sent
    await communicator.disconnect()


@pytest.mark.django_db  # in the test's transaction: the after-commit analysis does not run
def test_a_widget_message_reads_its_conversation_once_under_the_row_lock(shop_conversation):
    """The socket hands the store the conversation it read when it connected: the service's
    locked read is the only one (it was read once more, unlocked, before each store)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        consumers._store_customer_message(shop_conversation, "Where is my parcel?", "c1")
    table = Conversation._meta.db_table
    reads = [
        q["sql"] for q in queries if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"]
    ]
    assert len(reads) == 1
    if connection.vendor == "postgresql":
        assert reads[0].endswith("FOR UPDATE")
