"""Routing rules choose the team: reason, topic, channel and language; the first match wins,
the matched rule is recorded; defaults apply in order; bad rules get clear errors."""

import pytest
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError

from crm import services as crm_services
from escalation.models import EscalationEvent, RoutingRule, RoutingSettings
from escalation.routing import services as routing
from escalation.routing.rules import guess_language
from tests.factories import ChannelFactory, ConversationFactory, TeamFactory

from .routing_helpers import escalate

pytestmark = pytest.mark.django_db


def customer_says(conversation, text):
    crm_services.receive_customer_message(conversation=conversation, text=text)


@pytest.fixture
def billing():
    return TeamFactory(name="Billing")


@pytest.fixture
def orders():
    return TeamFactory(name="Orders")


def test_an_order_question_on_the_website_goes_to_orders_not_the_channels_default(billing, orders):
    rule = routing.save_rule(name="Orders questions", topics=["orders"], team=orders)
    conversation = ConversationFactory(channel=ChannelFactory(default_team=billing))
    customer_says(conversation, "Where is my order? The tracking number shows nothing.")

    escalation = escalate(conversation)

    assert escalation.team == orders
    assert escalation.routing_rule == rule
    routed = escalation.events.get(kind=EscalationEvent.Kind.ROUTED)
    assert (routed.new_value, routed.note) == ("Orders", "Orders questions")
    conversation.refresh_from_db()
    assert conversation.team == orders


def test_the_detectors_topic_and_reason_match(billing, orders):
    security = TeamFactory(name="Security")
    routing.save_rule(name="Angry", reasons=["sentiment"], team=orders)
    rule = routing.save_rule(name="Takeovers", topics=["account_security"], team=security)
    conversation = ConversationFactory(channel=ChannelFactory(default_team=billing))
    signals = {"complexity": {"topics": ["account_security"]}}
    escalation = escalate(conversation, reason="complexity", signals=signals)
    assert (escalation.team, escalation.routing_rule) == (security, rule)


def test_rules_are_tried_in_order_and_every_condition_must_hold(billing, orders):
    germany = TeamFactory(name="DACH")
    routing.save_rule(
        name="German on WhatsApp", languages=["de"], channel_kinds=["whatsapp"], team=orders
    )
    second = routing.save_rule(name="German anywhere", languages=["de"], team=germany)
    conversation = ConversationFactory(channel=ChannelFactory(default_team=billing))
    customer_says(
        conversation, "Ich möchte bitte mit einem Menschen sprechen, das ist nicht mein Fehler"
    )
    escalation = escalate(conversation)
    assert (escalation.team, escalation.routing_rule, escalation.language) == (
        germany,
        second,
        "de",
    )


def test_without_a_match_the_channel_team_then_the_default_team(billing, orders):
    routing.save_rule(name="Legal", topics=["legal"], team=orders)
    with_channel_team = escalate(ConversationFactory(channel=ChannelFactory(default_team=billing)))
    assert (with_channel_team.team, with_channel_team.routing_rule) == (billing, None)

    routing.update_routing_settings(default_team=orders)
    no_team = escalate(ConversationFactory(channel=ChannelFactory(default_team=None)))
    assert no_team.team == orders


def test_an_inactive_rule_is_skipped(billing, orders):
    rule = routing.save_rule(name="Orders", topics=["orders"], team=orders)
    routing.save_rule(rule=rule, is_active=False)
    conversation = ConversationFactory(channel=ChannelFactory(default_team=billing))
    customer_says(conversation, "my parcel never arrived")
    assert escalate(conversation).team == billing


def test_moving_a_rule_changes_the_order(orders, billing):
    first = routing.save_rule(name="First", team=orders)
    second = routing.save_rule(name="Second", team=billing)
    routing.move_rule(rule=second, up=True)
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["Second", "First"]
    assert first.pk


def test_bad_rules_get_clear_errors(orders):
    with pytest.raises(ValidationError) as error:
        routing.save_rule(name="", reasons=["shouting"], channel_kinds=["fax"], team=orders)
    fields = error.value.message_dict
    assert "Unknown reasons: shouting" in fields["reasons"][0]
    assert "Unknown channels: fax" in fields["channel_kinds"][0]
    assert fields["name"] == ["Give the rule a name."]


def test_a_rule_naming_a_missing_team_is_refused(orders):
    rule = RoutingRule(name="Ghost", team_id=987654)
    with pytest.raises(ValidationError, match="does not exist"):
        rule.full_clean()


def test_a_team_named_by_a_rule_cannot_be_deleted(orders):
    routing.save_rule(name="Orders", team=orders)
    with pytest.raises(ProtectedError):
        orders.delete()


def test_the_default_settings_are_validated():
    with pytest.raises(ValidationError) as error:
        routing.update_routing_settings(sla_targets={"urgent": 5}, ageing_seconds={"urgent": 60})
    fields = error.value.message_dict
    assert "sla_targets" in fields and "ageing_seconds" in fields
    assert RoutingSettings.load().sla_targets["urgent"] == 120


@pytest.mark.parametrize(
    ("texts", "language"),
    [
        (["Where is my order? I have been waiting for a week and this is not ok"], "en"),
        (["Hola, quiero hablar con una persona por favor, no es mi culpa"], "es"),
        (["Bonjour, je veux parler avec une personne, ce n'est pas normal"], "fr"),
        (["Ich möchte mit einem Menschen sprechen, das ist nicht mein Fehler"], "de"),
        (["注文した商品がまだ届きません"], "ja"),
        (["我的订单还没有到"], "zh"),
        (["Где мой заказ?"], "ru"),
        (["ok"], ""),
    ],
)
def test_the_customers_language_is_guessed_from_their_words(texts, language):
    assert guess_language(texts) == language
