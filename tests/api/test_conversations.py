"""Conversations and their messages over the API, for integrations and for customers."""

import pytest

from crm import realtime
from crm import services as crm_services
from crm.models import Contact, Conversation, Message, new_token
from tests.api.conftest import error_of
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/conversations/"


def start(client, **overrides):
    body = {
        "channel": "api",
        "contact": {"name": "Dana Shopper", "email": "dana@example.com"},
        "text": "Hello, where is my parcel?",
    } | overrides
    return client.post(URL, body, format="json")


def test_start_returns_id_customer_token_and_mode(api, api_channel):
    response = start(api)
    assert response.status_code == 201, response.content
    body = response.json()
    conversation = Conversation.objects.get(pk=body["id"])
    assert body["customer_token"] == conversation.customer_token
    assert body["mode"] in {"ai", "awaiting_agent"}
    assert body["channel"]["kind"] == "api"
    assert body["contact"]["email"] == "dana@example.com"
    first = conversation.messages.order_by("id").first()
    assert body["first_message"] == first.pk
    assert (first.sender, first.text) == ("customer", "Hello, where is my parcel?")


def test_start_by_channel_key_reuses_the_contact_with_that_email(api, api_channel):
    Contact.objects.create(name="Dana", email="dana@example.com")
    response = start(api, channel="api-main")
    assert response.status_code == 201
    assert Contact.objects.filter(email__iexact="dana@example.com").count() == 1


def test_start_on_an_unknown_channel_is_a_404(api, api_channel):
    response = start(api, channel="nope")
    assert response.status_code == 404
    assert error_of(response)["code"] == "channel_not_found"


def test_a_refused_first_message_leaves_no_orphan_contact(api, api_channel, monkeypatch):
    from crm.errors import InvalidMessage

    def refuse(**kwargs):
        raise InvalidMessage("That message cannot be stored.")

    monkeypatch.setattr(crm_services, "receive_customer_message", refuse)
    response = start(api)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_message"
    assert not Contact.objects.exists() and not Conversation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact": {"email": "not-an-email"}}, "contact.email"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 5000}, "text"),
        ({"channel": ""}, "channel"),
        ({"contact": "Dana"}, "contact.non_field_errors"),
    ],
)
def test_start_with_bad_input_names_the_field(api, api_channel, body, field):
    response = start(api, **body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert field in error["fields"], error


def test_start_needs_the_write_scope(reader, api_channel):
    response = start(reader)
    assert response.status_code == 403
    assert error_of(response)["code"] == "insufficient_scope"
    assert not Conversation.objects.exists()


def test_list_filters_by_channel_and_mode(api, api_channel, channel):
    mine = ConversationFactory(channel=api_channel)
    ConversationFactory(channel=channel)
    closed = ConversationFactory(channel=api_channel, mode="closed")
    response = api.get(URL, {"channel": "api"})
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {mine.pk, closed.pk}
    response = api.get(URL, {"channel": "api", "mode": "closed"})
    assert [row["id"] for row in response.json()["results"]] == [closed.pk]
    assert "customer_token" not in response.json()["results"][0]


def test_list_rejects_a_bad_filter(api):
    response = api.get(URL, {"mode": "sleeping", "created_after": "yesterday"})
    assert response.status_code == 400
    assert {"mode", "created_after"} <= set(error_of(response)["fields"])


def test_read_one_and_a_missing_one(api, conversation):
    assert api.get(f"{URL}{conversation.pk}/").json()["id"] == conversation.pk
    response = api.get(f"{URL}999999/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def _messages(conversation, *texts):
    return [
        crm_services.receive_customer_message(conversation=conversation, text=text)
        for text in texts
    ]


def test_messages_in_order_and_after_a_given_id(api, conversation):
    first, second = _messages(conversation, "one", "two")
    rows = api.get(f"{URL}{conversation.pk}/messages/").json()["results"]
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids) and {first.pk, second.pk} <= set(ids)
    assert {"id", "sender", "text", "created_at"} <= set(rows[0])
    rows = api.get(f"{URL}{conversation.pk}/messages/", {"after": first.pk}).json()["results"]
    assert rows and all(row["id"] > first.pk for row in rows)
    assert second.pk in [row["id"] for row in rows]


def test_after_must_be_a_number(api, conversation):
    response = api.get(f"{URL}{conversation.pk}/messages/", {"after": "abc"})
    assert response.status_code == 400
    assert "after" in error_of(response)["fields"]


def test_customer_token_posts_and_reads_its_own_conversation(anonymous, conversation):
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=conversation.customer_token)
    response = anonymous.post(
        f"{URL}{conversation.pk}/messages/", {"text": "Is anyone there?"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["sender"] == "customer"
    assert "delivery_error" not in response.json()
    rows = anonymous.get(f"{URL}{conversation.pk}/messages/").json()["results"]
    assert "Is anyone there?" in [row["text"] for row in rows]
    assert anonymous.get(f"{URL}{conversation.pk}/").status_code == 200


def test_customer_token_never_sees_private_notes(anonymous, conversation, agent):
    crm_services.send_agent_message(
        conversation=conversation, agent=agent, text="VIP, be nice", private_note=True
    )
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=conversation.customer_token)
    texts = [
        row["text"] for row in anonymous.get(f"{URL}{conversation.pk}/messages/").json()["results"]
    ]
    assert "VIP, be nice" not in texts


def test_a_customer_reads_what_the_customer_socket_sends(anonymous, conversation):
    _messages(conversation, "Hello")
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=conversation.customer_token)
    (row,) = anonymous.get(f"{URL}{conversation.pk}/messages/").json()["results"]
    expected = realtime.customer_message_payload(conversation.messages.get())
    assert set(row) == set(expected)
    assert {k: v for k, v in row.items() if k != "created_at"} == {
        k: v for k, v in expected.items() if k != "created_at"
    }


def test_customer_token_cannot_reach_another_conversation(anonymous, conversation, channel):
    other = ConversationFactory(channel=channel)
    _messages(other, "my secret order number is 123")
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=conversation.customer_token)
    read = anonymous.get(f"{URL}{other.pk}/messages/")
    write = anonymous.post(f"{URL}{other.pk}/messages/", {"text": "hijack"}, format="json")
    detail = anonymous.get(f"{URL}{other.pk}/")
    missing = anonymous.get(f"{URL}999999/messages/")
    # The token is compared with that conversation's own (constant time), never looked up:
    # it does not open it, the same 404 as for an id that does not exist. Nothing leaks.
    assert read.status_code == write.status_code == detail.status_code == 404
    assert read.json() == missing.json() == detail.json()
    assert error_of(read)["code"] == "not_found"
    assert not other.messages.filter(text="hijack").exists()


def test_customer_token_cannot_call_staff_endpoints(anonymous, conversation):
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=conversation.customer_token)
    assert anonymous.get("/api/v1/escalations/").status_code == 401
    assert anonymous.get(URL).status_code == 401


def test_a_wrong_customer_token_finds_nothing(anonymous, conversation):
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=new_token())
    response = anonymous.get(f"{URL}{conversation.pk}/messages/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_value_that_is_no_customer_token_is_refused_as_credentials(anonymous, conversation):
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN="guess")
    response = anonymous.get(f"{URL}{conversation.pk}/messages/")
    assert response.status_code == 401


def test_api_token_posts_as_the_customer(api, conversation):
    response = api.post(f"{URL}{conversation.pk}/messages/", {"text": "hi"}, format="json")
    assert response.status_code == 201
    message = Message.objects.get(pk=response.json()["id"])
    assert message.sender == "customer" and message.author is None


def test_external_id_makes_a_repeated_post_idempotent(api, conversation):
    url = f"{URL}{conversation.pk}/messages/"
    first = api.post(url, {"text": "hi", "external_id": "bridge-1"}, format="json")
    again = api.post(url, {"text": "hi", "external_id": "bridge-1"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert conversation.messages.filter(provider_message_id="bridge-1").count() == 1


def test_reader_cannot_post_a_message(reader, conversation):
    response = reader.post(f"{URL}{conversation.pk}/messages/", {"text": "hi"}, format="json")
    assert response.status_code == 403


def test_empty_message_is_a_400_with_the_field(api, conversation):
    response = api.post(f"{URL}{conversation.pk}/messages/", {"text": ""}, format="json")
    assert response.status_code == 400
    assert "text" in error_of(response)["fields"]


def test_agent_replies_only_after_taking_over_and_notes_any_time(api, agent, conversation):
    from escalation import services as escalation_services

    url = f"{URL}{conversation.pk}/agent-messages/"
    refused = api.post(url, {"text": "Hi, Marina here"}, format="json")
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "not_assigned"
    note = api.post(url, {"text": "customer sounds upset", "private_note": True}, format="json")
    assert note.status_code == 201 and note.json()["is_private_note"] is True
    escalation, _ = escalation_services.escalate_conversation(
        conversation=conversation, reason="manual", priority=2, triggered_by="agent"
    )
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    reply = api.post(url, {"text": "Hi, Marina here"}, format="json")
    assert reply.status_code == 201, reply.content
    message = Message.objects.get(pk=reply.json()["id"])
    assert (message.sender, message.author, message.is_private_note) == ("agent", agent, False)


def test_customer_token_cannot_post_as_the_agent(anonymous, conversation):
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=conversation.customer_token)
    url = f"{URL}{conversation.pk}/agent-messages/"
    assert anonymous.post(url, {"text": "I am the agent"}, format="json").status_code == 401


def _escalate(conversation, priority="normal"):
    from escalation import services as escalation_services
    from escalation.models import Priority

    return escalation_services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.parse(priority),
        triggered_by="detection",
    )[0]


def test_a_waiting_conversation_says_where_the_customer_stands(
    api, anonymous, agent, api_channel, settings
):
    """What the widget shows ("You are number 2 …") reaches API integrators and the customer's
    own bridge too; null once nobody is waiting."""
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "DEFAULT_PICKUP_SECONDS": 120}
    _escalate(ConversationFactory(channel=api_channel))
    waiting = ConversationFactory(channel=api_channel)
    escalation = _escalate(waiting)
    chatting = ConversationFactory(channel=api_channel)

    body = api.get(f"{URL}{waiting.pk}/").json()
    assert body["mode"] == "awaiting_agent"
    assert body["queue"] == {
        "position": 2,
        "wait_minutes": 4,
        "text": "You are number 2 in the queue — about 4 minutes.",
    }
    anonymous.credentials(HTTP_X_CUSTOMER_TOKEN=waiting.customer_token)
    assert anonymous.get(f"{URL}{waiting.pk}/").json()["queue"] == body["queue"]
    assert api.get(f"{URL}{chatting.pk}/").json()["queue"] is None

    rows = {row["id"]: row["queue"] for row in api.get(URL).json()["results"]}
    assert rows[waiting.pk] == body["queue"] and rows[chatting.pk] is None

    from escalation import services as escalation_services

    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    assert api.get(f"{URL}{waiting.pk}/").json()["queue"] is None


def test_the_list_reads_queue_places_in_a_fixed_number_of_queries(
    api, api_channel, django_assert_max_num_queries
):
    for _ in range(2):
        _escalate(ConversationFactory(channel=api_channel))
    with django_assert_max_num_queries(30) as few:
        api.get(URL)
    for _ in range(6):
        _escalate(ConversationFactory(channel=api_channel))
    with django_assert_max_num_queries(len(few.captured_queries)):
        results = api.get(URL).json()["results"]
    assert len(results) == 8 and all(row["queue"] for row in results)
