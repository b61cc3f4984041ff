"""The widget over HTTP: its script, the demo page, starting a conversation (origin, input,
rate limit) and the polling fallback."""

import json

import pytest

from crm.models import Contact, Conversation, Message

from ..factories import AgentFactory, ChannelFactory, ConversationFactory

START = "/widget/conversations/"
SITE = "http://testserver"


@pytest.fixture
def shop(db):
    return ChannelFactory(key="shop-key", allowed_origins=["https://shop.example"])


def start(client, body, *, origin=SITE, ip="10.0.0.1"):
    extra = {"REMOTE_ADDR": ip}
    if origin:
        extra["HTTP_ORIGIN"] = origin
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(START, data=data, content_type="application/json", **extra)


def test_the_widget_script_is_served_and_never_writes_html_from_text(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    source = response.content.decode()
    assert "data-channel" in source and "localStorage" in source and "after=" in source
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source
    assert "textContent" in source


def test_the_demo_page_embeds_the_widget_with_a_channel_key(client, shop):
    response = client.get("/widget/demo/")
    assert response.status_code == 200
    assert b'src="/widget.js"' in response.content
    assert b'data-channel="shop-key"' in response.content


def test_the_demo_page_explains_what_to_do_without_a_website_channel(client, db):
    response = client.get("/widget/demo/")
    assert response.status_code == 200
    assert b"no active website channel" in response.content
    assert b"widget.js" not in response.content.split(b"<body>")[1].split(b"<pre>")[0]


def test_start_creates_the_conversation_with_its_first_message_and_a_socket_url(client, shop):
    response = start(
        client,
        {
            "channel": "shop-key",
            "name": "Jamie",
            "email": "jamie@example.com",
            "text": "Hello there",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    conversation = Conversation.objects.get(pk=body["id"])
    assert body["customer_token"] == conversation.customer_token
    assert body["mode"] == conversation.mode
    assert body["socket_url"] == (
        f"ws://testserver/ws/conversations/{conversation.pk}/?token={conversation.customer_token}"
    )
    assert response["Access-Control-Allow-Origin"] == SITE
    assert conversation.channel == shop
    assert (conversation.contact.name, conversation.contact.email) == ("Jamie", "jamie@example.com")
    first = conversation.messages.order_by("id").first()
    assert (first.sender, first.text) == ("customer", "Hello there")


def test_start_without_text_opens_an_empty_conversation(client, shop):
    response = start(client, {"channel": "shop-key"})
    assert response.status_code == 201
    assert not Message.objects.filter(conversation_id=response.json()["id"]).exists()


def test_start_from_an_allowed_foreign_origin_answers_cors_and_a_foreign_one_is_refused(
    client, shop
):
    response = start(client, {"channel": "shop-key"}, origin="https://shop.example")
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"

    response = start(client, {"channel": "shop-key", "text": "hi"}, origin="https://evil.example")
    assert response.status_code == 403
    assert response.json()["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    assert Conversation.objects.count() == 1


def test_a_channel_without_allowed_origins_takes_its_own_host_only(client, db):
    ChannelFactory(key="plain", allowed_origins=[])
    assert start(client, {"channel": "plain"}, origin="https://shop.example").status_code == 403
    assert start(client, {"channel": "plain"}, origin=SITE).status_code == 201


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ("{nope", "bad_json", None),
        ("[1]", "bad_json", None),
        ({}, "invalid_field", "channel"),
        ({"channel": 7}, "invalid_field", "channel"),
        ({"channel": "nope"}, "channel_not_found", "channel"),
        ({"channel": "shop-key", "name": ["x"]}, "invalid_field", "name"),
        ({"channel": "shop-key", "name": "n" * 201}, "invalid_field", "name"),
        ({"channel": "shop-key", "email": "not-an-email"}, "invalid_field", "email"),
        ({"channel": "shop-key", "text": ""}, "invalid_message", "text"),
        ({"channel": "shop-key", "text": 12}, "invalid_message", "text"),
        ({"channel": "shop-key", "text": "x" * 4001}, "invalid_message", "text"),
    ],
)
def test_bad_input_is_a_clear_400_and_creates_nothing(client, shop, body, code, field):
    response = start(client, body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["code"] == code and payload["message"]
    assert payload.get("field") == field
    assert not Conversation.objects.exists() and not Contact.objects.exists()


def test_a_non_website_channel_cannot_start_widget_chats(client, db):
    ChannelFactory(key="wa", kind="whatsapp")
    response = start(client, {"channel": "wa"})
    assert response.status_code == 400 and response.json()["code"] == "channel_not_found"


def test_start_is_rate_limited_per_ip(client, shop, settings):
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "WIDGET_START_RATE_LIMIT": 3}
    for _ in range(3):
        assert start(client, {"channel": "shop-key"}, ip="10.0.0.7").status_code == 201
    response = start(client, {"channel": "shop-key"}, ip="10.0.0.7")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited" and response["Retry-After"]
    assert start(client, {"channel": "shop-key"}, ip="10.0.0.8").status_code == 201
    assert Conversation.objects.count() == 4


def test_preflight_allows_the_json_post_and_the_token_header(client):
    response = client.options(
        START, HTTP_ORIGIN="https://shop.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "X-Customer-Token" in response["Access-Control-Allow-Headers"]
    assert "Content-Type" in response["Access-Control-Allow-Headers"]


def test_get_on_the_start_endpoint_is_405(client):
    assert client.get(START).status_code == 405


@pytest.fixture
def chat(db, shop):
    agent = AgentFactory(display_name="Marina", username="marina")
    conversation = ConversationFactory(channel=shop, mode="agent", assigned_agent=agent)
    texts = [
        ("customer", "one", False),
        ("agent", "two", False),
        ("agent", "secret", True),
        ("agent", "three", False),
    ]
    ids = [
        Message.objects.create(
            conversation=conversation,
            channel=shop,
            sender=sender,
            author=agent if sender == "agent" else None,
            text=text,
            is_private_note=private,
        ).pk
        for sender, text, private in texts
    ]
    return conversation, ids


def poll(client, conversation, *, token=None, after=None, origin=None):
    url = f"/widget/conversations/{conversation.pk}/messages/"
    if after is not None:
        url += f"?after={after}"
    extra = {"HTTP_X_CUSTOMER_TOKEN": conversation.customer_token if token is None else token}
    if origin:
        extra["HTTP_ORIGIN"] = origin
    return client.get(url, **extra)


def test_polling_returns_the_messages_after_the_cursor_without_private_notes(client, chat):
    conversation, ids = chat
    body = poll(client, conversation, after=ids[0]).json()
    assert [m["text"] for m in body["messages"]] == ["two", "three"]
    assert body["messages"][0]["author_name"] == "Marina"
    assert (body["mode"], body["agent_name"], body["has_more"]) == ("agent", "Marina", False)
    assert [m["text"] for m in poll(client, conversation).json()["messages"]] == [
        "one",
        "two",
        "three",
    ]
    response = poll(client, conversation, after=ids[-1], origin="https://shop.example")
    assert response.json()["messages"] == []
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"


def test_polling_refuses_a_wrong_token_a_foreign_origin_and_a_bad_cursor(client, chat, shop):
    conversation, _ids = chat
    other = ConversationFactory(channel=shop)
    assert poll(client, conversation, token=other.customer_token).status_code == 403
    assert poll(client, conversation, token="").status_code == 403
    assert poll(client, conversation, origin="https://evil.example").status_code == 403
    response = poll(client, conversation, after="-1")
    assert response.status_code == 400 and response.json()["code"] == "invalid_after"
    response = client.get("/widget/conversations/999999/messages/", HTTP_X_CUSTOMER_TOKEN="x")
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
async def test_the_token_from_start_opens_that_conversations_socket_and_replays_its_first_message():
    from urllib.parse import urlsplit

    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.db import connections
    from django.test import Client

    from config.asgi import application

    await sync_to_async(ChannelFactory)(key="shop-key", allowed_origins=["https://shop.example"])
    response = await sync_to_async(start)(
        Client(), {"channel": "shop-key", "text": "Is anyone there?"}, origin="https://shop.example"
    )
    assert response.status_code == 201
    url = urlsplit(response.json()["socket_url"])
    communicator = WebsocketCommunicator(
        application, f"{url.path}?{url.query}", headers=[(b"origin", b"https://shop.example")]
    )
    ok, _code = await communicator.connect(timeout=5)
    assert ok
    assert (await communicator.receive_json_from(timeout=5))["state"] == "live"
    first = await communicator.receive_json_from(timeout=5)
    assert first["type"] == "message.created"
    assert first["message"]["text"] == "Is anyone there?"
    await communicator.disconnect()
    await sync_to_async(connections.close_all)()


def test_start_never_files_the_visitor_under_an_existing_contact_by_email(client, shop):
    vip = Contact.objects.create(name="Real VIP", email="vip@example.com")
    response = start(client, {"channel": "shop-key", "name": "Me", "email": "VIP@example.com"})
    assert response.status_code == 201, response.content
    conversation = Conversation.objects.get(pk=response.json()["id"])
    assert conversation.contact_id != vip.pk
    assert (conversation.contact.name, conversation.contact.email) == ("Me", "VIP@example.com")
    assert not vip.conversations.exists()
    again = start(client, {"channel": "shop-key", "email": "vip@example.com"})
    assert Conversation.objects.get(pk=again.json()["id"]).contact_id not in {
        vip.pk,
        conversation.contact_id,
    }


@pytest.mark.parametrize("after", ["²", "٣", "1.5", " 1", "1\n", "9" * 19, "9" * 23])
def test_polling_answers_a_clear_400_for_any_cursor_that_is_not_plain_digits(client, chat, after):
    conversation, _ids = chat
    response = client.get(
        f"/widget/conversations/{conversation.pk}/messages/",
        {"after": after},
        HTTP_X_CUSTOMER_TOKEN=conversation.customer_token,
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_after" and response.json()["message"]


def test_polling_gives_the_customer_no_staff_only_fields(client, chat):
    conversation, _ids = chat
    Message.objects.filter(conversation=conversation).update(confidence=0.42)
    messages = poll(client, conversation).json()["messages"]
    assert [m["text"] for m in messages] == ["one", "two", "three"]
    for message in messages:
        assert "confidence" not in message and "is_private_note" not in message, message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{nope", "bad_json"),
        ({}, "invalid_field"),
        ({"channel": "shop-key", "email": "not-an-email"}, "invalid_field"),
        ({"channel": "nope"}, "channel_not_found"),
        ({"channel": "wa"}, "channel_not_found"),
        ({"channel": "shop-key", "text": ""}, "invalid_message"),
    ],
)
def test_start_errors_are_readable_by_an_allowed_origin_and_never_by_a_foreign_one(
    client, shop, body, code
):
    ChannelFactory(key="wa", kind="whatsapp", allowed_origins=["https://wa.example"])
    for origin in ("https://shop.example", SITE):
        response = start(client, body, origin=origin)
        assert response.status_code == 400 and response.json()["code"] == code
        assert response["Access-Control-Allow-Origin"] == origin
    response = start(client, body, origin="https://evil.example")
    assert response.status_code in (400, 403)
    assert "Access-Control-Allow-Origin" not in response
    response = start(client, body, origin="https://wa.example")  # not a website channel's
    assert "Access-Control-Allow-Origin" not in response


def test_the_rate_limit_answer_is_readable_by_an_allowed_origin_only(client, shop, settings):
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "WIDGET_START_RATE_LIMIT": 0}
    response = start(client, {"channel": "shop-key"}, origin="https://shop.example")
    assert response.status_code == 429
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    response = start(client, {"channel": "shop-key"}, origin="https://evil.example")
    assert response.status_code == 429
    assert "Access-Control-Allow-Origin" not in response
