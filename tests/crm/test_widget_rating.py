"""The widget's end of a conversation: the rating over HTTP and over the customer socket, the
polling fallback's view of it, and refusals as clear 4xx / error frames."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from config.asgi import application
from escalation import services
from escalation.models import Escalation, Priority, SatisfactionRating

from ..factories import AgentFactory, ChannelFactory, ConversationFactory

SITE = "http://testserver"
TIMEOUT = 10


def ended(conversation, agent, *, resolve=True):
    escalation, _created = services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.NORMAL,
        triggered_by=Escalation.Trigger.AGENT,
    )
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    if resolve:
        services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    return escalation


def rate(client, conversation, body, *, token=None, origin=SITE):
    extra = {"HTTP_X_CUSTOMER_TOKEN": conversation.customer_token if token is None else token}
    if origin:
        extra["HTTP_ORIGIN"] = origin
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        f"/widget/conversations/{conversation.pk}/rating/",
        data=data,
        content_type="application/json",
        **extra,
    )


@pytest.fixture
def shop_conversation(db):
    return ConversationFactory(channel=ChannelFactory(allowed_origins=["https://shop.example"]))


def test_a_rating_over_http_is_stored_with_its_comment(client, shop_conversation, agent):
    escalation = ended(shop_conversation, agent)
    response = rate(
        client, shop_conversation, {"escalation": escalation.pk, "score": 4, "comment": "Fast"}
    )
    assert response.status_code == 201
    assert response.json() == {"escalation": escalation.pk, "score": 4}
    assert response["Access-Control-Allow-Origin"] == SITE
    rating = SatisfactionRating.objects.get()
    assert (rating.escalation_id, rating.score, rating.comment) == (escalation.pk, 4, "Fast")
    again = rate(client, shop_conversation, {"escalation": escalation.pk, "score": 5})
    assert again.status_code == 409 and again.json()["code"] == "already_rated"
    assert SatisfactionRating.objects.get().score == 4


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"score": 6}, 400, "invalid_rating"),
        ({"score": "four"}, 400, "invalid_rating"),
        ({"score": 4, "comment": 12}, 400, "invalid_rating"),
        ({"score": 4, "escalation": "x"}, 400, "invalid_rating"),
        ("[4]", 400, "bad_json"),
        ("not json", 400, "bad_json"),
        ({"score": 4, "escalation": 999999}, 404, "escalation_not_found"),
    ],
)
def test_bad_ratings_are_clear_4xx(client, shop_conversation, agent, body, status, code):
    escalation = ended(shop_conversation, agent)
    if isinstance(body, dict):
        body = {"escalation": escalation.pk, **body}
    response = rate(client, shop_conversation, body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["message"]
    assert not SatisfactionRating.objects.exists()


def test_a_rating_for_someone_elses_conversation_is_refused(client, shop_conversation, agent):
    theirs = ended(ConversationFactory(channel=shop_conversation.channel), agent)
    ended(shop_conversation, AgentFactory(display_name="Alex"))
    # their escalation through my conversation and token: not found
    response = rate(client, shop_conversation, {"escalation": theirs.pk, "score": 1})
    assert (response.status_code, response.json()["code"]) == (404, "escalation_not_found")
    # their conversation with my token: forbidden
    wrong_token = rate(
        client,
        theirs.conversation,
        {"escalation": theirs.pk, "score": 1},
        token=shop_conversation.customer_token,
    )
    assert wrong_token.status_code == 403
    foreign = rate(
        client,
        shop_conversation,
        {"escalation": theirs.pk, "score": 1},
        origin="https://evil.example",
    )
    assert foreign.status_code == 403
    assert not SatisfactionRating.objects.exists()


def test_a_rating_before_the_end_is_a_409(client, shop_conversation, agent):
    escalation = ended(shop_conversation, agent, resolve=False)
    response = rate(client, shop_conversation, {"escalation": escalation.pk, "score": 5})
    assert (response.status_code, response.json()["code"]) == (409, "rating_not_requested")


def test_only_post_is_allowed(client, shop_conversation):
    response = client.get(f"/widget/conversations/{shop_conversation.pk}/rating/")
    assert response.status_code == 405


def test_polling_says_resolved_and_what_to_rate(client, shop_conversation, agent):
    escalation = ended(shop_conversation, agent)
    body = client.get(
        f"/widget/conversations/{shop_conversation.pk}/messages/",
        HTTP_X_CUSTOMER_TOKEN=shop_conversation.customer_token,
    ).json()
    assert (body["mode"], body["resolved"]) == ("agent", True)
    assert body["status"] == "Resolved — write here if you need anything else"
    assert body["rating"]["escalation"] == escalation.pk
    assert body["messages"][-1]["text"].startswith("Thank you for contacting us.")
    rate(client, shop_conversation, {"escalation": escalation.pk, "score": 3})
    body = client.get(
        f"/widget/conversations/{shop_conversation.pk}/messages/",
        HTTP_X_CUSTOMER_TOKEN=shop_conversation.customer_token,
    ).json()
    assert body["rating"] is None


# --- over the customer socket -----------------------------------------------------------------


async def frames_until(communicator, predicate, *, limit=40):
    seen = []
    for _ in range(limit):
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        seen.append(frame)
        if predicate(frame):
            return seen
    raise AssertionError(f"no matching frame in {seen}")


@pytest.mark.django_db(transaction=True)
async def test_the_socket_shows_the_end_takes_one_rating_and_refuses_bad_ones():
    agent = await sync_to_async(AgentFactory)(display_name="Alex", username="alex")
    conversation = await sync_to_async(ConversationFactory)()
    other = await sync_to_async(ConversationFactory)()
    other_escalation = await sync_to_async(ended)(other, agent)
    escalation = await sync_to_async(ended)(conversation, agent, resolve=False)
    path = f"/ws/conversations/{conversation.pk}/?token={conversation.customer_token}"
    socket = WebsocketCommunicator(application, path, headers=[(b"origin", SITE.encode())])
    try:
        assert (await socket.connect(timeout=TIMEOUT))[0]
        # an unknown frame's error marks the end of the connect frames (nothing to rate yet)
        await socket.send_json_to({"type": "nonsense"})
        frames = await frames_until(socket, lambda f: f["type"] == "error")
        assert not [f for f in frames if f["type"] == "rating.requested"]

        await sync_to_async(services.resolve_escalation)(escalation_id=escalation.pk, agent=agent)
        frames = await frames_until(socket, lambda f: f["type"] == "rating.requested")
        modes = [(f["mode"], f["resolved"]) for f in frames if f["type"] == "conversation.mode"]
        assert modes == [("agent", True)], frames
        closing = [f["message"]["text"] for f in frames if f["type"] == "message.created"]
        assert closing and closing[-1].startswith("Thank you for contacting us.")
        assert frames[-1]["escalation"] == escalation.pk

        async def refused(frame):
            await socket.send_json_to({"type": "rating", **frame})
            error = (await frames_until(socket, lambda f: f["type"] == "error"))[-1]
            return error["code"]

        assert await refused({"escalation": escalation.pk, "score": 6}) == "invalid_rating"
        assert await refused({"escalation": escalation.pk, "score": "great"}) == "invalid_rating"
        assert (
            await refused({"escalation": other_escalation.pk, "score": 5}) == "escalation_not_found"
        )
        await socket.send_json_to(
            {"type": "rating", "escalation": escalation.pk, "score": 4, "comment": "Kind"}
        )
        recorded = (await frames_until(socket, lambda f: f["type"] == "rating.recorded"))[-1]
        assert (recorded["escalation"], recorded["score"]) == (escalation.pk, 4)
        assert await refused({"escalation": escalation.pk, "score": 5}) == "already_rated"
    finally:
        await socket.disconnect()

    # a reconnect: still "resolved", and nothing left to rate
    socket = WebsocketCommunicator(application, path, headers=[(b"origin", SITE.encode())])
    try:
        assert (await socket.connect(timeout=TIMEOUT))[0]
        frames = await frames_until(socket, lambda f: f["type"] == "conversation.mode")
        assert frames[-1]["resolved"] is True
        await socket.send_json_to({"type": "typing"})
        await socket.send_json_to({"type": "nonsense"})
        after = await frames_until(socket, lambda f: f["type"] == "error")
        assert not [f for f in after if f["type"] == "rating.requested"]
    finally:
        await socket.disconnect()
    rating = await sync_to_async(SatisfactionRating.objects.get)()
    assert (rating.score, rating.comment) == (4, "Kind")
    await sync_to_async(connections.close_all)()
