"""The handoff card: the problem in one sentence, what the AI tried, the facts, the mood over the
conversation, what not to ask again, why — and where it shows (escalation, panel, alert, API,
the Claude backend through the real anthropic client on a MockTransport)."""

import json

import pytest

from crm import services as crm_services
from crm.llm import override_transport
from crm.models import Contact
from escalation.detection import Turn, summarize
from escalation.detection.claude import TOOL_NAME
from escalation.detection.summary import HandoffCard, build_handoff_card, mood_of, mood_path
from escalation.models import Escalation
from notifications.models import Notification
from tests.factories import AgentFactory, AssistantFactory, ChannelFactory, ConversationFactory

try:  # the HTTP library the installed anthropic SDK is built on (2.x: httpx2)
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs use httpx itself
    import httpx

JAMIE = [
    Turn("customer", "My subscription was charged twice this month. Can you check?"),
    Turn(
        "assistant",
        "I can see two charges of $49 on your card: one on June 1 and one on "
        "June 3. The June 3 charge looks like a duplicate.",
        0.86,
    ),
    Turn("customer", "Yes, order 55120, refund the duplicate to jamie@example.com today."),
    Turn("assistant", "This requires a human agent. Connecting you now…", 0.4),
]


# --- the card from the turns (no database) ------------------------------------------------------
def test_the_problem_is_one_sentence_of_the_customers_own_words():
    card = build_handoff_card(JAMIE, "complexity")
    assert card.problem == "My subscription was charged twice this month."
    assert card.why == "the topic needs a human's authority or judgement"


def test_the_card_quotes_what_the_ai_offered_not_its_handoff_line():
    card = build_handoff_card(JAMIE, "complexity")
    assert card.ai_tried.startswith("I can see two charges of $49")
    assert "Connecting you now" not in card.as_text()


def test_facts_are_typed_and_kept_in_order_once_each():
    facts = build_handoff_card(JAMIE, "complexity").facts
    assert facts == [
        {"kind": "amount", "value": "$49"},
        {"kind": "date", "value": "June 1"},
        {"kind": "date", "value": "June 3"},
        {"kind": "order", "value": "55120"},
        {"kind": "email", "value": "jamie@example.com"},
    ]  # "today" is left out: it says nothing once the day is over


def test_an_amount_is_not_also_a_date_and_an_order_keeps_its_letters():
    card = build_handoff_card(
        [Turn("customer", "Order A-7731: a pending charge of $89.90 since 12/03, twice today")],
        "request",
    )
    assert card.facts == [
        {"kind": "order", "value": "A-7731"},
        {"kind": "amount", "value": "$89.90"},
        {"kind": "date", "value": "12/03"},
    ]


def test_dont_ask_lists_what_the_customer_gave_not_what_the_ai_said():
    card = build_handoff_card(JAMIE, "complexity", known={"name": "Jamie Patel", "email": ""})
    assert card.dont_ask == [
        {"kind": "name", "label": "name", "value": "Jamie Patel"},
        {"kind": "order", "label": "order number", "value": "55120"},
        {"kind": "email", "label": "email", "value": "jamie@example.com"},
    ]  # "$49" and the dates were the AI's reading of the account, not the customer's words


def test_an_email_given_in_the_form_and_repeated_in_chat_is_listed_once():
    card = build_handoff_card(JAMIE, "request", known={"email": "jamie@example.com"})
    assert [item["value"] for item in card.dont_ask] == ["jamie@example.com", "55120"]


@pytest.mark.parametrize(
    ("sentiment", "mood"),
    [
        ({"score": 0.0, "intensity": 0.1, "labels": []}, "calm"),
        ({"score": 0.9, "intensity": 0.0, "labels": []}, "pleased"),
        ({"score": 0.55, "intensity": 0.1, "labels": []}, "calm"),  # "Yes, can you refund it?"
        ({"score": -0.1, "intensity": 0.2, "labels": ["confusion"]}, "confused"),
        ({"score": -0.5, "intensity": 0.4, "labels": ["frustration"]}, "frustrated"),
        ({"score": -0.3, "intensity": 0.7, "labels": []}, "frustrated"),
        ({"score": -0.8, "intensity": 0.9, "labels": ["frustration", "anger"]}, "angry"),
        (None, None),
        ({"intensity": "loud"}, None),
    ],
)
def test_each_messages_mood_comes_from_its_stored_sentiment(sentiment, mood):
    assert mood_of(sentiment) == mood


def test_the_mood_path_folds_repeats_and_keeps_the_start_and_the_end():
    assert mood_path(["calm", "calm", None, "frustrated", "frustrated"]) == ["calm", "frustrated"]
    wavy = ["calm", "confused", "calm", "frustrated", "calm", "angry"]
    assert mood_path(wavy) == ["calm", "frustrated", "calm", "angry"]
    assert mood_path([]) == [] and mood_path([None]) == []


def test_the_plain_text_is_one_labelled_line_each_and_the_short_text_one_line():
    card = build_handoff_card(JAMIE, "complexity", moods=["calm", "frustrated"])
    lines = card.as_text().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Problem",
        "AI tried",
        "Facts",
        "Mood",
        "Don't ask again",
        "Escalated because the topic needs a human's authority or judgement.",
    ]
    assert "Mood: calm → frustrated" in lines
    short = card.short_text()
    assert "\n" not in short and len(short) <= 180
    assert short.startswith("My subscription was charged twice") and "calm → frustrated" in short
    assert summarize(JAMIE, "complexity") == build_handoff_card(JAMIE, "complexity").as_text()


def test_a_models_problem_statement_heads_the_card():
    card = build_handoff_card(JAMIE, "request", problem="Duplicate $49 charge; wants a refund.")
    assert card.problem == "Duplicate $49 charge; wants a refund."


def test_no_customer_words_yet_still_makes_a_card():
    card = build_handoff_card([Turn("assistant", "Hello!", 0.9)], "manual")
    assert card.problem == "No customer messages yet." and card.facts == [] and card.mood == []


def test_a_stored_card_reads_back_and_a_malformed_one_is_none():
    card = build_handoff_card(JAMIE, "complexity", moods=["calm"])
    assert HandoffCard.from_dict(card.as_dict()) == card
    for stored in ({}, None, "text", {"problem": ""}, {"problem": "x", "facts": 1, "bogus": 2}):
        result = HandoffCard.from_dict(stored)
        assert result is None or result.problem == "x"


# --- on an escalation ---------------------------------------------------------------------------
@pytest.fixture
def jamie_chat(db):
    channel = ChannelFactory(assistant=AssistantFactory(handoff_enabled=True))
    contact = Contact.objects.create(name="Jamie Patel", email="jamie@example.com")
    conversation = ConversationFactory(contact=contact, channel=channel)
    return conversation


def test_an_escalation_stores_the_card_with_the_mood_over_the_conversation(
    jamie_chat, django_capture_on_commit_callbacks
):
    AgentFactory(display_name="Marina", username="marina")
    for text in (
        "Hi, my subscription was charged twice this month, order 55120.",
        "This is the third time I ask and nobody helps. I am really fed up with this!",
        "I am furious. Get me a human being right now!!!",
    ):
        with django_capture_on_commit_callbacks(execute=True):
            crm_services.receive_customer_message(conversation=jamie_chat, text=text)
    escalation = Escalation.objects.get(conversation=jamie_chat)
    card = escalation.card
    assert card["problem"] == "Hi, my subscription was charged twice this month, order 55120."
    assert card["mood"][0] == "calm" and card["mood"][-1] in ("frustrated", "angry")
    assert {"kind": "email", "label": "email", "value": "jamie@example.com"} in card["dont_ask"]
    assert {"kind": "order", "label": "order number", "value": "55120"} in card["dont_ask"]
    assert escalation.summary == HandoffCard.from_dict(card).as_text()
    # Alerts carry it as one line.
    alert = Notification.objects.filter(escalation=escalation).first()
    assert alert is not None and " — Hi, my subscription was charged twice" in alert.text
    assert "· mood calm · known: name (Jamie Patel), email (jamie@example.com)" in alert.text


def test_the_card_shows_on_the_conversation_page_and_the_inbox_pane(client, jamie_chat):
    from escalation import services

    crm_services.receive_customer_message(
        conversation=jamie_chat, text="I was charged twice for order 55120, $49 each."
    )
    escalation, _ = services.escalate_conversation(
        conversation=jamie_chat, reason="complexity", priority="high", triggered_by="agent"
    )
    client.force_login(AgentFactory())
    for url in (
        f"/crm/conversations/{jamie_chat.pk}/",
        f"/crm/inbox/conversations/{jamie_chat.pk}/",
    ):
        html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert 'id="handoff-card"' in html, url
        assert "I was charged twice for order 55120, $49 each." in html
        assert 'class="chip known-order">order number: 55120</li>' in html
        assert 'class="chip known-email">email: jamie@example.com</li>' in html
    assert "Problem: " not in html  # the card, not its text rendering


def test_an_escalation_from_before_cards_shows_its_summary_text(client, jamie_chat):
    from escalation import services

    escalation, _ = services.escalate_conversation(
        conversation=jamie_chat, reason="request", priority="normal", triggered_by="agent"
    )
    Escalation.objects.filter(pk=escalation.pk).update(card={}, summary="Old: pipe | line")
    client.force_login(AgentFactory())
    html = client.get(f"/crm/conversations/{jamie_chat.pk}/").content.decode()
    assert 'id="handoff-card"' not in html and "Old: pipe | line" in html


def test_the_api_adds_the_card_and_keeps_the_summary_string(jamie_chat):
    from escalation import services
    from tests.api.conftest import token_client

    crm_services.receive_customer_message(conversation=jamie_chat, text="Order 55120 is late")
    escalation, _ = services.escalate_conversation(
        conversation=jamie_chat, reason="request", priority="normal", triggered_by="agent"
    )
    body = token_client(AgentFactory(), "read").get(f"/api/v1/escalations/{escalation.pk}/").json()
    assert body["summary"] == escalation.summary and body["summary"].startswith("Problem: ")
    assert body["card"]["problem"] == "Order 55120 is late"
    assert body["card"]["dont_ask"][-1] == {
        "kind": "order",
        "label": "order number",
        "value": "55120",
    }
    assert set(body["card"]) == {
        "problem",
        "ai_tried",
        "facts",
        "mood",
        "dont_ask",
        "reason",
        "why",
    }
    Escalation.objects.filter(pk=escalation.pk).update(card={})
    old = token_client(AgentFactory(), "read").get(f"/api/v1/escalations/{escalation.pk}/").json()
    assert old["card"] is None and old["summary"]


# --- the Claude backend -------------------------------------------------------------------------
CLAUDE_ANSWER = {
    "sentiment": {"score": -0.6, "intensity": 0.7, "labels": ["frustration"]},
    "intent": {"request_human": True, "confidence": 0.9},
    "complexity": {"topics": []},
    "loop": {"count": 0},
    "decision": {
        "escalate": True,
        "reason": "request",
        "priority": "high",
        "detail": "Asks for someone to check a late parcel",
    },
    "summary": "Parcel 55120 is late and the customer wants a person to chase the carrier.",
}


def test_claudes_summary_heads_the_card_through_the_real_client(
    jamie_chat, settings, django_capture_on_commit_callbacks
):
    settings.ANTHROPIC_MODEL = "claude-test"
    settings.ANTHROPIC_MAX_RETRIES = 0
    assistant = jamie_chat.assistant
    assistant.backend = "claude"
    assistant.save(update_fields=["backend"])
    requests = []

    def answered(request: httpx.Request) -> httpx.Response:
        requests.append(json.loads(request.content))
        content = [{"type": "tool_use", "id": "t1", "name": TOOL_NAME, "input": CLAUDE_ANSWER}]
        body = {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": content,
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10},
        }
        return httpx.Response(200, json=body)

    with (
        override_transport(httpx.MockTransport(answered)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        crm_services.receive_customer_message(
            conversation=jamie_chat, text="My parcel 55120 is late, can a person check?"
        )
    assert requests, "the detection went to Claude"
    escalation = Escalation.objects.get(conversation=jamie_chat)
    assert escalation.card["problem"] == CLAUDE_ANSWER["summary"]
    assert escalation.card["mood"] == ["frustrated"]  # from the sentiment Claude gave
    assert escalation.summary.startswith("Problem: Parcel 55120 is late")
