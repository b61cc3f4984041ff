"""Fair customer sockets (crm.limits, counted in Redis when configured): caps on open sockets per
conversation and per address, message budgets per conversation and per address, and a bounded
backlog per conversation in front of the one database thread. Every refusal is a close code or
an error frame naming the message it refuses; nothing accepted is lost."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from crm import consumers, limits
from tests.crm.test_customer_socket import (
    ack_for,
    connect_and_drain,
    customer_socket,
    frames_until,
    refused,
    stored_customer_messages,
)
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_db_connections():
    yield
    await sync_to_async(connections.close_all)()


async def acked(communicator, client_id):
    """Wait for the acknowledgement of ``client_id``; the first message of a test process also
    loads the detector and the assistant (slow on a busy machine), hence the long wait."""
    for _ in range(30):
        frame = await communicator.receive_json_from(timeout=60)
        if ack_for(client_id)(frame):
            return frame
    raise AssertionError(f"no acknowledgement of {client_id}")


def from_address(communicator, address):
    communicator.scope["client"] = (address, 50000)
    return communicator


@pytest.fixture
def limits_of(settings):
    def apply(**values):
        settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, **values}

    return apply


async def test_sockets_past_the_cap_per_conversation_are_closed_with_4429(
    shop_conversation, limits_of
):
    limits_of(SOCKETS_PER_CONVERSATION=2)
    first = customer_socket(shop_conversation)
    second = customer_socket(shop_conversation)
    await connect_and_drain(first)
    await connect_and_drain(second)
    assert await refused(customer_socket(shop_conversation)) == consumers.CLOSE_TOO_MANY_SOCKETS

    await first.disconnect()  # its slot is free again
    third = customer_socket(shop_conversation)
    await connect_and_drain(third)
    await second.disconnect()
    await third.disconnect()


async def test_sockets_past_the_cap_per_address_are_closed_whatever_the_conversation(
    shop_conversation, limits_of
):
    limits_of(SOCKETS_PER_ADDRESS=2)
    others = [
        await sync_to_async(ConversationFactory)(channel=shop_conversation.channel)
        for _ in range(3)
    ]
    open_ = []
    for conversation in others[:2]:
        open_.append(from_address(customer_socket(conversation), "203.0.113.5"))
        await connect_and_drain(open_[-1])
    flood = from_address(customer_socket(others[2]), "203.0.113.5")
    assert await refused(flood) == consumers.CLOSE_TOO_MANY_SOCKETS
    # another address is not affected
    fair = from_address(customer_socket(shop_conversation), "198.51.100.2")
    await connect_and_drain(fair)
    for communicator in [*open_, fair]:
        await communicator.disconnect()


async def test_messages_past_the_conversations_budget_are_refused_by_client_id(
    shop_conversation, limits_of, monkeypatch
):
    """The budget is per conversation, across its sockets: two sockets share it."""
    limits_of(MESSAGES_PER_CONVERSATION_PER_MINUTE=3)
    # Budgets count per clock minute: the four messages (seconds apart on a busy machine) must
    # not straddle a minute's end, where the fourth would open the next minute's budget.
    monkeypatch.setattr(limits, "BUDGET_WINDOW_SECONDS", 3600)
    # Questions the knowledge base answers: no handoff work slows the acknowledgements.
    texts = {"one 1": "When are you open?", "one 2": "What are your opening hours?"}
    texts["two 1"] = "Is support open on Friday?"
    one, two = customer_socket(shop_conversation), customer_socket(shop_conversation)
    await connect_and_drain(one)
    await connect_and_drain(two)
    for n in range(1, 3):
        await one.send_json_to(
            {"type": "message", "text": texts[f"one {n}"], "client_id": f"one-{n}"}
        )
        await acked(one, f"one-{n}")
    await two.send_json_to({"type": "message", "text": texts["two 1"], "client_id": "two-1"})
    await acked(two, "two-1")
    await two.send_json_to({"type": "message", "text": "two 2", "client_id": "two-2"})
    refusal = (await frames_until(two, lambda f: f["type"] == "error"))[-1]
    assert refusal["code"] == "rate_limited"
    assert refusal["client_id"] == "two-2"  # the widget keeps it and resends it later
    assert [row[1] for row in await stored_customer_messages(shop_conversation)] == [
        texts["one 1"],
        texts["one 2"],
        texts["two 1"],
    ]
    await one.disconnect()
    await two.disconnect()


async def test_a_conversations_backlog_is_bounded_and_shed_with_busy(
    shop_conversation, slow_store, limits_of
):
    """While its stores wait for the database, a conversation queues at most FRAME_QUEUE_MAX
    frames over all its sockets; the rest are refused with "busy" (and their client ids)."""
    limits_of(FRAME_QUEUE_MAX=3)
    one, two = customer_socket(shop_conversation), customer_socket(shop_conversation)
    for communicator in (one, two):
        await connect_and_drain(communicator)
        # Its connect has more database reads after the mode frame (queue place, rating); a
        # bad frame is answered only once they are done, before the store below blocks them.
        await communicator.send_to(text_data="not json")
        await frames_until(communicator, lambda f: f.get("code") == "bad_json")
    for n in range(3):
        await one.send_json_to({"type": "message", "text": f"m{n}", "client_id": f"a{n}"})
    waiting = consumers.CustomerConsumer.pending_by_conversation
    for _ in range(300):  # each frame spends its budget in Redis first: wait until all three wait
        if waiting[shop_conversation.pk] == 3:
            break
        await asyncio.sleep(0.05)
    await two.send_json_to({"type": "message", "text": "shed", "client_id": "b0"})
    busy = (await frames_until(two, lambda f: f["type"] == "error"))[-1]
    assert (busy["code"], busy["client_id"]) == ("busy", "b0")

    slow_store.set()
    await acked(one, "a2")
    stored = [row[1] for row in await stored_customer_messages(shop_conversation)]
    assert stored == ["m0", "m1", "m2"]  # the first was already handed to the database
    await one.disconnect()
    await two.disconnect()
