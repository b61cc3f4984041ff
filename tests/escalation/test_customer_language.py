"""The handoff's system messages reach the customer in the language they wrote in."""

import pytest

from crm.models import CustomerText, Message
from escalation import services
from escalation.models import Escalation, Priority

pytestmark = pytest.mark.django_db


def say(conversation, text):
    Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text=text
    )


def system_texts(conversation) -> list[str]:
    return list(
        conversation.messages.filter(sender__in=["system", "agent"])
        .order_by("id")
        .values_list("text", flat=True)
    )


def escalate(conversation):
    escalation, _created = services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.NORMAL,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    return escalation


def test_a_german_customer_is_told_everything_in_german(conversation, agent):
    say(conversation, "Ich möchte bitte mit einem Menschen sprechen, das ist nicht mein Paket")
    escalation = escalate(conversation)
    assert escalation.language == "de"
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    services.reassign_escalation(escalation_id=escalation.pk, actor=agent)
    texts = system_texts(conversation)
    assert texts[0].startswith("Ich verbinde Sie mit jemandem aus unserem Team.")
    assert texts[0].endswith("etwa 3 Minuten.")  # DEFAULT_PICKUP_SECONDS=180, first in line
    assert texts[1:] == [
        "Sie sprechen jetzt mit Marina",
        "Hallo, ich bin Marina. Ich habe Ihr Gespräch gelesen und helfe Ihnen gern.",
        "Sie sind wieder in der Warteschlange; die nächste freie Person ist gleich für Sie da.",
    ]


def test_the_managers_wording_of_the_customers_language_wins(conversation, agent):
    CustomerText.objects.create(kind="takeover", language="es", text="{agent_name} te atiende")
    CustomerText.objects.create(kind="takeover", language="en", text="{agent_name} is here")
    say(conversation, "Quiero hablar con una persona por favor, no es mi pedido")
    escalation = escalate(conversation)
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    services.hand_back_to_ai(escalation_id=escalation.pk, agent=agent)
    texts = system_texts(conversation)
    assert texts[1:] == [
        "Marina te atiende",
        "Hola, soy Marina. He revisado tu conversación y estoy aquí para ayudarte.",
        "Vuelves a hablar con nuestro asistente.",
    ]


def test_a_language_the_product_does_not_speak_gets_english(conversation, agent):
    say(conversation, "Ik wil met een mens praten, het is niet mijn bestelling")
    escalation = escalate(conversation)
    assert escalation.language == "nl"
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    texts = system_texts(conversation)
    assert texts[0].startswith("I'm connecting you with a member of our team.")
    assert texts[1] == "Now speaking with Marina"
