"""Who else is on a conversation, through the agent socket and the channel layer: viewing on
subscribe and on the page's beat, typing with the colleague's id, left on unsubscribe or when
the socket goes, each with a time to live so a crashed tab expires on colleagues' screens."""

import pytest

from crm.consumers import PRESENCE_TTL_SECONDS

from ..factories import AgentFactory, ChannelFactory, ConversationFactory
from .test_agent_socket import (  # noqa: F401 (close_db_connections is a fixture)
    close_db_connections,
    live_agent_socket,
    subscribe,
)
from .test_customer_socket import TIMEOUT, frames_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def marina(db):
    return AgentFactory(display_name="Marina", username="marina")


@pytest.fixture
def conversation(db):
    return ConversationFactory(channel=ChannelFactory())


@pytest.fixture
def alex(db):
    return AgentFactory(display_name="Alex", username="alex")


def presence_of(frames, state):
    return [f for f in frames if f["type"] == "presence" and f["state"] == state]


async def test_colleagues_see_viewing_typing_and_leaving(marina, alex, conversation):
    watcher = await live_agent_socket(marina)
    await subscribe(watcher, conversation.pk)
    alex_socket = await live_agent_socket(alex)
    await subscribe(alex_socket, conversation.pk)

    frames = await frames_until(watcher, lambda f: f["type"] == "presence")
    assert frames[-1] == {
        "type": "presence",
        "conversation": conversation.pk,
        "user_id": alex.pk,
        "name": "Alex",
        "state": "viewing",
        "ttl": PRESENCE_TTL_SECONDS,
    }

    await alex_socket.send_json_to({"type": "typing", "conversation": conversation.pk})
    frames = await frames_until(watcher, lambda f: f["type"] == "typing")
    assert frames[-1]["user_id"] == alex.pk and frames[-1]["name"] == "Alex"

    # The page's beat; a second "viewing" within 2 s is not relayed again.
    await alex_socket.send_json_to(
        {"type": "presence", "conversation": conversation.pk, "state": "viewing"}
    )
    await alex_socket.send_json_to(
        {"type": "presence", "conversation": conversation.pk, "state": "viewing"}
    )
    frames = await frames_until(watcher, lambda f: f["type"] == "presence")
    assert frames[-1]["state"] == "viewing"
    assert await watcher.receive_nothing(timeout=0.3)
    assert await alex_socket.receive_nothing(timeout=0.1)  # never one's own presence

    await alex_socket.disconnect()  # a closed tab says it left
    frames = await frames_until(watcher, lambda f: f["type"] == "presence")
    assert frames[-1]["state"] == "left" and frames[-1]["user_id"] == alex.pk
    await watcher.disconnect()


async def test_presence_frames_are_validated(marina, conversation):
    socket = await live_agent_socket(marina)
    await socket.send_json_to(
        {"type": "presence", "conversation": conversation.pk, "state": "viewing"}
    )
    frame = await socket.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and "Subscribe" in frame["message"]
    await subscribe(socket, conversation.pk)
    await socket.send_json_to({"type": "presence", "conversation": conversation.pk, "state": "x"})
    frame = await socket.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error" and '"state"' in frame["message"]
    await socket.send_json_to({"type": "presence", "conversation": "abc", "state": "viewing"})
    frame = await socket.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error"
    await socket.disconnect()


async def test_unsubscribe_says_left(marina, alex, conversation):
    watcher = await live_agent_socket(marina)
    await subscribe(watcher, conversation.pk)
    other = await live_agent_socket(alex)
    await subscribe(other, conversation.pk)
    await frames_until(watcher, lambda f: f["type"] == "presence")
    await other.send_json_to({"type": "unsubscribe", "conversation": conversation.pk})
    frames = await frames_until(watcher, lambda f: f["type"] == "presence")
    assert frames[-1]["state"] == "left"
    await other.disconnect()
    await watcher.disconnect()
