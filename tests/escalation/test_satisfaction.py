"""The end of a conversation for the customer: the closing message, the rating prompt, one
rating per escalation, and the WhatsApp/Instagram digit reply."""

import json

import pytest

from crm import services as crm_services
from crm.models import Message
from escalation import satisfaction, services
from escalation.errors import AlreadyRated, EscalationNotFound, InvalidRating, RatingNotRequested
from escalation.models import (
    Escalation,
    EscalationEvent,
    MessageAnalysis,
    Priority,
    SatisfactionRating,
)
from escalation.tasks import sweep_unanalysed_messages
from tests.factories import ChannelFactory, ConversationFactory
from tests.races import race

pytestmark = pytest.mark.django_db


def escalate(conversation):
    escalation, _created = services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.NORMAL,
        triggered_by=Escalation.Trigger.AGENT,
    )
    return escalation


def taken(conversation, agent, *, first_words=""):
    if first_words:
        Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            sender="customer",
            text=first_words,
        )
    escalation = escalate(conversation)
    return services.take_over_escalation(escalation_id=escalation.pk, agent=agent)


def texts_after(conversation, message_id):
    return list(
        conversation.messages.filter(id__gt=message_id).order_by("id").values_list("sender", "text")
    )


def last_id(conversation):
    return conversation.messages.order_by("-id").values_list("id", flat=True).first()


def test_resolving_sends_the_closing_message_once_and_asks_for_a_rating(conversation, agent):
    escalation = taken(conversation, agent)
    before = last_id(conversation)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    services.close_escalation(escalation_id=escalation.pk, agent=agent)
    escalation.refresh_from_db()
    assert escalation.rating_requested_at is not None
    # one closing message (not a second on close); the widget's prompt is a frame, not a message
    assert texts_after(conversation, before) == [
        (
            "system",
            "Thank you for contacting us. This conversation is now closed; if you need anything "
            "else, just write again.",
        )
    ]
    assert satisfaction.pending_rating_request(conversation.pk) == {
        "type": "rating.requested",
        "conversation": conversation.pk,
        "escalation": escalation.pk,
        "prompt": "How did we do? Rate this conversation from 1 (poor) to 5 (excellent).",
        "min": 1,
        "max": 5,
    }


def test_the_widget_gets_the_prompt_after_commit(
    conversation, agent, django_capture_on_commit_callbacks, monkeypatch
):
    from crm import realtime

    pushed = []
    monkeypatch.setattr(realtime, "send_soon", lambda group, event: pushed.append((group, event)))
    escalation = taken(conversation, agent, first_words="Quiero hablar con una persona por favor")
    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    to_customer = [e for g, e in pushed if g == f"conversation.{conversation.pk}"]
    mode = next(e for e in to_customer if e["type"] == "conversation.mode")
    assert (mode["mode"], mode["resolved"]) == ("agent", True)
    assert mode["status"] == "Resuelto — escribe aquí si necesitas algo más"
    prompt = next(e for e in to_customer if e["type"] == "rating.requested")
    assert (
        prompt["prompt"]
        == "¿Qué tal lo hicimos? Valora esta conversación de 1 (mal) a 5 (excelente)."
    )


def test_closing_an_escalation_nobody_picked_up_asks_nothing(conversation, agent):
    escalation = escalate(conversation)
    services.close_escalation(escalation_id=escalation.pk, agent=agent, reason="spam")
    escalation.refresh_from_db()
    assert escalation.rating_requested_at is None
    assert satisfaction.pending_rating_request(conversation.pk) is None


def test_a_rating_is_stored_once_with_an_audit_row_and_thanks(conversation, agent):
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    rating = satisfaction.rate_escalation(
        conversation_id=conversation.pk, escalation_id=escalation.pk, score=4, comment=" Quick! "
    )
    assert (rating.score, rating.comment) == (4, "Quick!")
    event = EscalationEvent.objects.get(escalation=escalation, kind=EscalationEvent.Kind.RATED)
    assert (event.new_value, event.note) == ("4", "Quick!")
    assert conversation.messages.order_by("-id").first().text == "Thank you for your feedback!"
    assert satisfaction.pending_rating_request(conversation.pk) is None
    with pytest.raises(AlreadyRated):
        satisfaction.rate_escalation(
            conversation_id=conversation.pk, escalation_id=escalation.pk, score=5
        )
    assert SatisfactionRating.objects.get().score == 4


@pytest.mark.parametrize(
    ("score", "comment", "error"),
    [
        (6, "", InvalidRating),
        (0, "", InvalidRating),
        ("4", "", InvalidRating),
        ("four", "", InvalidRating),
        (4.5, "", InvalidRating),
        (True, "", InvalidRating),
        (None, "", InvalidRating),
        (4, ["not", "text"], InvalidRating),
        (4, "x" * 1001, InvalidRating),
    ],
)
def test_bad_ratings_are_refused_with_what_is_wrong(conversation, agent, score, comment, error):
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    with pytest.raises(error) as raised:
        satisfaction.rate_escalation(
            conversation_id=conversation.pk,
            escalation_id=escalation.pk,
            score=score,
            comment=comment,
        )
    assert raised.value.status == 400
    assert not SatisfactionRating.objects.exists()


def test_another_conversations_escalation_or_one_not_ended_is_refused(conversation, agent):
    escalation = taken(conversation, agent)
    with pytest.raises(RatingNotRequested) as not_yet:
        satisfaction.rate_escalation(
            conversation_id=conversation.pk, escalation_id=escalation.pk, score=5
        )
    assert not_yet.value.status == 409
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    stranger = ConversationFactory()
    with pytest.raises(EscalationNotFound) as not_theirs:
        satisfaction.rate_escalation(
            conversation_id=stranger.pk, escalation_id=escalation.pk, score=1
        )
    assert not_theirs.value.status == 404
    assert not SatisfactionRating.objects.exists()


# --- WhatsApp and Instagram: the reply prompt and the digit -----------------------------------


@pytest.fixture
def whatsapp_conversation(db):
    whatsapp = ChannelFactory(kind="whatsapp", access_token="t", provider_account_id="1")
    return ConversationFactory(channel=whatsapp, external_id="34600")


def customer_writes(conversation, text, n):
    """As the webhook stores it; the after-commit work (analysis, the assistant) runs."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        return crm_services.receive_customer_message(
            conversation=conversation, text=text, provider_message_id=f"wamid.{n}"
        )


def test_whatsapp_gets_a_reply_prompt_and_a_lone_digit_is_the_rating(whatsapp_conversation, agent):
    conversation = whatsapp_conversation
    escalation = taken(conversation, agent)
    before = last_id(conversation)
    services.close_escalation(escalation_id=escalation.pk, agent=agent, reason="done")
    assert [text for _sender, text in texts_after(conversation, before)][-1] == (
        "How did we do? Reply with a number from 1 (poor) to 5 (excellent)."
    )
    reply = customer_writes(conversation, " 4 ", 1)
    rating = SatisfactionRating.objects.get()
    assert (rating.escalation_id, rating.score, rating.message_id) == (escalation.pk, 4, reply.pk)
    # neither detection nor the assistant saw it, now or from the sweep
    assert not MessageAnalysis.objects.filter(message=reply).exists()
    assert not conversation.messages.filter(sender="ai").exists()
    Message.objects.filter(pk=reply.pk).update(created_at=reply.created_at.replace(year=2000))
    assert sweep_unanalysed_messages() == 0
    assert conversation.messages.order_by("-id").first().text == "Thank you for your feedback!"
    conversation.refresh_from_db()
    assert conversation.mode == "closed"  # a rating does not reopen it with the assistant
    # a second digit is an ordinary message (and reopens it, as any message does)
    again = customer_writes(conversation, "5", 2)
    assert SatisfactionRating.objects.count() == 1
    assert MessageAnalysis.objects.filter(message=again).exists()


@pytest.mark.parametrize("text", ["6", "0", "45", "4 stars, thanks", "great", "¿4?"])
def test_anything_but_a_lone_digit_from_1_to_5_goes_on_as_a_message(
    whatsapp_conversation, agent, text
):
    conversation = whatsapp_conversation
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    message = customer_writes(conversation, text, 1)
    assert not SatisfactionRating.objects.exists()
    assert MessageAnalysis.objects.filter(message=message).exists()


def test_only_the_next_message_after_the_prompt_can_be_the_rating(whatsapp_conversation, agent):
    conversation = whatsapp_conversation
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    customer_writes(conversation, "One more question about my invoice", 1)
    customer_writes(conversation, "3", 2)
    assert not SatisfactionRating.objects.exists()


def test_a_digit_before_any_prompt_is_an_ordinary_message(whatsapp_conversation, agent):
    conversation = whatsapp_conversation
    taken(conversation, agent)
    message = customer_writes(conversation, "2", 1)
    assert not SatisfactionRating.objects.exists()
    assert MessageAnalysis.objects.filter(message=message).exists()


def test_the_widget_customer_typing_a_digit_is_not_rating(conversation, agent):
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    crm_services.receive_customer_message(conversation=conversation, text="5")
    assert not SatisfactionRating.objects.exists()


# --- races ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_ratings_at_once_store_one():
    """Two sockets (or a socket and the HTTP endpoint) rating at the same moment: the one-to-one
    lets one in and the other gets AlreadyRated, on PostgreSQL and on SQLite."""
    from tests.factories import AgentFactory

    agent = AgentFactory(display_name="Marina")
    conversation = ConversationFactory()
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)

    outcomes = race(
        lambda i: satisfaction.rate_escalation(
            conversation_id=conversation.pk, escalation_id=escalation.pk, score=i + 1
        ),
        4,
    )
    stored = [o for o in outcomes if isinstance(o, SatisfactionRating)]
    refused = [o for o in outcomes if isinstance(o, AlreadyRated)]
    assert (len(stored), len(refused)) == (1, 3), outcomes
    assert SatisfactionRating.objects.count() == 1
    assert EscalationEvent.objects.filter(kind=EscalationEvent.Kind.RATED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_digit_replies_at_once_store_one_rating():
    from tests.factories import AgentFactory

    agent = AgentFactory(display_name="Marina")
    whatsapp = ChannelFactory(kind="whatsapp", access_token="t", provider_account_id="1")
    conversation = ConversationFactory(channel=whatsapp, external_id="34600")
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    race(lambda i: customer_writes(conversation, str(i + 3), i), 2)
    assert SatisfactionRating.objects.count() == 1
    assert json.dumps(SatisfactionRating.objects.get().score) in ("3", "4")
