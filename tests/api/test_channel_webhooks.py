"""Inbound WhatsApp Cloud API and Instagram webhooks: verification, signatures checked before
parsing, one stored message per provider id, replies sent back through the provider, and an
escalation that reaches an outbound webhook subscriber, signed."""

import hashlib
import hmac
import itertools
import json

import httpx
import pytest

from crm import services as crm_services
from crm.models import Contact, ContactIdentity, Conversation, Message
from escalation.models import Escalation
from integrations import services as integration_services
from integrations import webhooks
from integrations.models import WebhookDelivery
from integrations.transport import use_transport
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

SECRET = "meta-app-secret"
WA_URL = "/api/webhooks/whatsapp/wa-main/"
IG_URL = "/api/webhooks/instagram/ig-main/"


@pytest.fixture
def whatsapp(db):
    return ChannelFactory(
        kind="whatsapp",
        key="wa-main",
        webhook_secret=SECRET,
        verify_token="let-me-in",
        provider_account_id="1098765",
        access_token="EAAG-token",
    )


@pytest.fixture
def instagram(db):
    return ChannelFactory(
        kind="instagram",
        key="ig-main",
        webhook_secret=SECRET,
        provider_account_id="17841400000",
        access_token="IG-token",
    )


def signed(body: bytes, secret: str = SECRET) -> dict:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"HTTP_X_HUB_SIGNATURE_256": f"sha256={mac}"}


def wa_payload(text="I want to talk to a human, now!", message_id="wamid.HBgM1", wa_id="4915"):
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": "1098765"},
                            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": message_id,
                                    "timestamp": "1700000000",
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


@pytest.fixture(autouse=True)
def _run_after_commit_effects(django_capture_on_commit_callbacks):
    """Run on_commit effects (analysis, escalation, sends) as a real commit would."""
    global committed
    committed = lambda: django_capture_on_commit_callbacks(execute=True)  # noqa: E731
    yield
    committed = None


committed = None


def post(client, url, payload, **headers):
    body = json.dumps(payload).encode()
    with committed():
        return client.generic(
            "POST", url, body, content_type="application/json", **(signed(body) | headers)
        )


@pytest.fixture
def graph_api():
    """Meta's Graph API, in memory: records every send and answers like Meta."""
    sent, numbers = [], itertools.count(1)

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        n = next(numbers)
        if request.url.path.startswith("/v21.0/1098765/"):
            return httpx.Response(200, json={"messages": [{"id": f"wamid.OUT{n}"}]})
        return httpx.Response(200, json={"recipient_id": "x", "message_id": f"mid.OUT{n}"})

    with use_transport(httpx.MockTransport(handler)):
        yield sent


@pytest.fixture
def subscriber():
    """An outside system subscribed to escalation.created, receiving over a mock transport."""
    received = []
    subscription = integration_services.create_webhook_subscription(
        url="https://hooks.example.com/escalations",
        events=["escalation.created"],
        secret="whsec_test_secret_123",
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Host"] == "hooks.example.com":  # sent to the address checked
            received.append(request)
            return httpx.Response(204)
        return httpx.Response(200, json={"messages": [{"id": "wamid.OUT"}]})

    with use_transport(httpx.MockTransport(handler)):
        yield subscription, received


# --- The acceptance scenario --------------------------------------------------------------


def test_signed_payload_twice_is_stored_once_and_escalation_reaches_the_subscriber(
    client, whatsapp, subscriber
):
    subscription, received = subscriber
    payload = wa_payload()
    first = post(client, WA_URL, payload)
    again = post(client, WA_URL, payload)  # Meta retries
    assert first.status_code == again.status_code == 200
    assert first.json() == {"received": 1, "stored": 1, "skipped": 0}
    assert again.json()["stored"] == 0
    stored = Message.objects.filter(channel=whatsapp, provider_message_id="wamid.HBgM1")
    assert stored.count() == 1
    message = stored.get()
    assert message.text == "I want to talk to a human, now!" and message.sender == "customer"
    contact = message.conversation.contact
    assert contact.name == "Kerry"
    assert ContactIdentity.objects.get(contact=contact).external_id == "4915"

    # The explicit request for a person escalated the conversation ...
    escalation = Escalation.objects.get(conversation=message.conversation)
    assert escalation.reason == "request"
    # ... and the subscriber got one signed delivery for it.
    delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert (delivery.event, delivery.status, delivery.attempts) == (
        "escalation.created",
        "succeeded",
        1,
    )
    assert len(received) == 1
    request = received[0]
    assert integration_services.verify_signature(
        subscription.secret, request.headers["X-LiveEscalation-Signature"], request.content
    )
    assert not integration_services.verify_signature(
        "another-secret", request.headers["X-LiveEscalation-Signature"], request.content
    )
    body = json.loads(request.content)
    assert body["event"] == "escalation.created"
    assert body["data"]["escalation"]["id"] == escalation.pk
    assert body["data"]["escalation"]["channel"] == "whatsapp"


def test_bad_signature_is_401_before_any_parsing(client, whatsapp, monkeypatch):
    def must_not_parse(*args, **kwargs):
        raise AssertionError("the body was parsed before the signature was checked")

    monkeypatch.setattr(webhooks, "parse_payload", must_not_parse)
    monkeypatch.setattr(webhooks, "read_whatsapp", must_not_parse)
    body = json.dumps(wa_payload()).encode()
    for headers in (
        {"HTTP_X_HUB_SIGNATURE_256": "sha256=" + "0" * 64},
        signed(body, secret="not-the-secret"),
        {},
        {"HTTP_X_HUB_SIGNATURE_256": "md5=abc"},
    ):
        response = client.generic("POST", WA_URL, body, content_type="application/json", **headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "authentication_failed"
    # a body that is not even JSON is still refused for its signature, not its syntax
    response = client.generic(
        "POST",
        WA_URL,
        b"\xff{{{",
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256="sha256=00",
    )
    assert response.status_code == 401
    assert not Message.objects.exists()


def test_signature_is_over_the_raw_bytes(client, whatsapp):
    body = json.dumps(wa_payload()).encode()
    reformatted = json.dumps(json.loads(body), indent=2).encode()  # same JSON, other bytes
    response = client.generic(
        "POST", WA_URL, reformatted, content_type="application/json", **signed(body)
    )
    assert response.status_code == 401


def test_verification_challenge(client, whatsapp):
    ok = client.get(
        WA_URL,
        {"hub.mode": "subscribe", "hub.verify_token": "let-me-in", "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200 and ok.content == b"1158201444"
    assert ok["Content-Type"].startswith("text/plain")
    wrong = client.get(
        WA_URL, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    )
    assert wrong.status_code == 403


def test_unknown_channel_is_404(client, whatsapp):
    body = json.dumps(wa_payload()).encode()
    response = client.generic(
        "POST",
        "/api/webhooks/whatsapp/nope/",
        body,
        content_type="application/json",
        **signed(body),
    )
    assert response.status_code == 404
    # a channel of another kind is not reachable under the WhatsApp URL either
    assert client.get("/api/webhooks/instagram/wa-main/").status_code == 404


def test_signed_but_not_an_object_is_400(client, whatsapp):
    body = b"[1, 2]"
    response = client.generic("POST", WA_URL, body, content_type="application/json", **signed(body))
    assert response.status_code == 400


def test_next_message_joins_the_same_conversation_and_odd_items_are_skipped(client, whatsapp):
    post(client, WA_URL, wa_payload(text="Where is my order?", message_id="wamid.1"))
    post(client, WA_URL, wa_payload(text="It's order 4411", message_id="wamid.2"))
    weird = wa_payload(text="   ", message_id="wamid.3")  # empty text cannot be stored
    weird["entry"][0]["changes"][0]["value"]["messages"].append({"id": 5})  # no sender
    response = post(client, WA_URL, weird)
    assert response.status_code == 200 and response.json()["skipped"] == 1
    assert Conversation.objects.filter(channel=whatsapp).count() == 1
    assert Contact.objects.count() == 1
    assert list(
        Message.objects.filter(channel=whatsapp, sender="customer").values_list("text", flat=True)
    ) == ["Where is my order?", "It's order 4411"]


def test_status_receipts_mark_our_replies(client, whatsapp, graph_api):
    post(client, WA_URL, wa_payload(text="Hi, what are your opening hours?", message_id="w.1"))
    reply = Message.objects.filter(channel=whatsapp).exclude(sender="customer").first()
    assert reply is not None and reply.delivery_status == "sent"
    failed = {
        "entry": [
            {
                "changes": [
                    {
                        "value": {
                            "statuses": [
                                {
                                    "id": reply.provider_message_id,
                                    "status": "failed",
                                    "errors": [{"title": "Re-engagement message"}],
                                }
                            ]
                        }
                    }
                ]
            }
        ]
    }
    post(client, WA_URL, failed)
    reply.refresh_from_db()
    assert (reply.delivery_status, reply.delivery_error) == ("failed", "Re-engagement message")


def test_an_agent_reply_goes_out_through_the_whatsapp_cloud_api(client, whatsapp, graph_api, agent):
    post(client, WA_URL, wa_payload())
    escalation = Escalation.objects.get()
    from escalation import services as escalation_services

    with committed():
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    graph_api.clear()
    with committed():
        message = crm_services.send_agent_message(
            conversation=escalation.conversation, agent=agent, text="Hi Kerry, Marina here."
        )
    assert len(graph_api) == 1
    request = graph_api[0]
    assert str(request.url) == "https://graph.facebook.com/v21.0/1098765/messages"
    assert request.headers["Authorization"] == "Bearer EAAG-token"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915",
        "type": "text",
        "text": {"preview_url": False, "body": "Hi Kerry, Marina here."},
    }
    message.refresh_from_db()
    assert message.delivery_status == "sent" and message.provider_message_id.startswith("wamid")


# --- Instagram ------------------------------------------------------------------------------


def ig_payload(text="hello there", mid="m_1", sender="IGSID-77", echo=False):
    message = {"mid": mid, "text": text}
    if echo:
        message["is_echo"] = True
    return {
        "object": "instagram",
        "entry": [
            {
                "id": "17841400000",
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": sender},
                        "recipient": {"id": "17841400000"},
                        "timestamp": 1,
                        "message": message,
                    }
                ],
            }
        ],
    }


def test_instagram_message_stored_once_and_echoes_ignored(client, instagram, graph_api):
    assert post(client, IG_URL, ig_payload()).json()["stored"] == 1
    assert post(client, IG_URL, ig_payload()).json()["stored"] == 0
    assert post(client, IG_URL, ig_payload(mid="m_echo", echo=True)).json()["received"] == 0
    customer = Message.objects.filter(channel=instagram, sender="customer")
    assert list(customer.values_list("text", flat=True)) == ["hello there"]
    identity = ContactIdentity.objects.get(channel_kind="instagram")
    assert identity.external_id == "IGSID-77"
    # the assistant's answer went back through the Graph API to that user
    replies = [json.loads(r.content) for r in graph_api]
    assert replies and replies[0]["recipient"] == {"id": "IGSID-77"}


def test_instagram_signature_is_checked(client, instagram):
    body = json.dumps(ig_payload()).encode()
    response = client.generic(
        "POST", IG_URL, body, content_type="application/json", **signed(body, "wrong")
    )
    assert response.status_code == 401
    assert not Message.objects.exists()


def test_an_oversized_body_is_413_not_a_crash(client, whatsapp, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps(wa_payload(text="x" * 2000)).encode()
    response = client.generic("POST", WA_URL, body, content_type="application/json", **signed(body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_body_over_our_own_limit_is_413_too(client, whatsapp):
    """Between MAX_BODY_BYTES (1 MB) and Django's 2.5 MB, the same answer: 413."""
    body = json.dumps(wa_payload(text="x" * (1024 * 1024 + 10))).encode()
    response = client.generic("POST", WA_URL, body, content_type="application/json", **signed(body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not Message.objects.exists()


def test_each_number_of_one_contact_keeps_its_own_conversation(client, whatsapp):
    from crm.models import ContactIdentity, Conversation

    url = f"/api/webhooks/whatsapp/{whatsapp.key}/"
    post(client, url, wa_payload(message_id="wamid.A", wa_id="4915"))
    first = Conversation.objects.get(external_id="4915")
    # The same person, known by a second number.
    ContactIdentity.objects.create(
        contact=first.contact, channel_kind="whatsapp", external_id="4916"
    )
    post(client, url, wa_payload(message_id="wamid.B", wa_id="4916"))
    second = Conversation.objects.get(external_id="4916")
    assert second.pk != first.pk and second.contact_id == first.contact_id


# --- The end of a conversation: the rating prompt and the digit reply (issue 14) ------------


def _sent_texts(graph_api) -> list[str]:
    texts = []
    for request in graph_api:
        body = json.loads(request.content)
        texts.append(
            (body.get("text") or {}).get("body") or (body.get("message") or {}).get("text")
        )
    return texts


@pytest.mark.parametrize("kind", ["whatsapp", "instagram"])
def test_the_rating_prompt_goes_out_and_a_digit_reply_is_the_rating(
    client, whatsapp, instagram, graph_api, agent, kind
):
    from escalation import services as escalation_services
    from escalation.models import MessageAnalysis, SatisfactionRating

    if kind == "whatsapp":
        url, first, reply = WA_URL, wa_payload(), wa_payload(text="5", message_id="wamid.R")
    else:
        url = IG_URL
        first = ig_payload(text="I want to talk to a human, now!")
        reply = ig_payload(text="5", mid="m_rating")
    post(client, url, first)
    escalation = Escalation.objects.get()
    with committed():
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    graph_api.clear()
    with committed():
        escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    assert _sent_texts(graph_api) == [
        "Thank you for contacting us. This conversation is now closed; if you need anything "
        "else, just write again.",
        "How did we do? Reply with a number from 1 (poor) to 5 (excellent).",
    ]
    graph_api.clear()
    post(client, url, reply)
    rating = SatisfactionRating.objects.get()
    assert (rating.escalation_id, rating.score) == (escalation.pk, 5)
    assert rating.message.text == "5" and rating.message.channel.kind == kind
    assert not MessageAnalysis.objects.filter(message=rating.message).exists()
    # the only answer is the thanks: neither the assistant nor a new escalation
    assert _sent_texts(graph_api) == ["Thank you for your feedback!"]
    assert Escalation.objects.count() == 1
