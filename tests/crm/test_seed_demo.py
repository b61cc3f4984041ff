import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from crm.models import Channel, Conversation
from escalation.models import Escalation

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_jamies_escalation_once(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    jamie = Conversation.objects.get(pk=4821)
    assert jamie.contact.name == "Jamie Patel"
    assert jamie.mode == Conversation.Mode.AWAITING_AGENT
    assert jamie.contact.conversations.count() == 3  # two prior chats
    escalation = Escalation.objects.get(conversation=jamie)
    assert (escalation.reason, escalation.status) == ("complexity", "queued")
    assert set(Conversation.objects.values_list("mode", flat=True)) == {
        "ai",
        "awaiting_agent",
        "agent",
        "closed",
    }
    assert Escalation.objects.filter(conversation=jamie).count() == 1
    # Every waiting customer's messages, the handoff notice included, are from when they
    # escalated, not from the moment of seeding.
    for waiting in Escalation.objects.filter(status="queued"):
        newest = waiting.conversation.messages.order_by("-created_at").first()
        assert newest.created_at <= waiting.escalated_at + timedelta(seconds=30)
    assert Channel.objects.get(key="website-demo").prechat_form == "optional"
    # Anonymous visitors with what their browser reported, live (one waiting) and in history.
    visits = Conversation.objects.filter(
        contact__name="", contact__email="", contact__phone=""
    ).exclude(page_url="")
    assert visits.filter(mode="awaiting_agent", time_zone="America/Sao_Paulo").count() == 1
    assert visits.filter(external_id__startswith="demo-history:").count() >= 20
    assert all(c.contact.is_visitor for c in visits.select_related("contact"))


def test_seed_demo_refuses_demo_logins_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("seed_demo")


def test_seed_demo_writes_thirty_days_of_history_once_that_every_chart_can_use(settings):
    from datetime import timedelta

    from django.utils import timezone

    from crm.management import demo_history
    from escalation.selectors import MetricsFilters, escalation_metrics

    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    history = Conversation.objects.filter(external_id__startswith=demo_history.MARKER)
    count = history.count()
    assert 400 <= count <= 900, count
    assert "[5/6] 30 days of history" in out.getvalue()
    call_command("seed_demo", stdout=io.StringIO())
    assert history.count() == count  # idempotent

    now = timezone.now()
    oldest = history.order_by("created_at").first().created_at
    assert timedelta(days=29) < now - oldest <= timedelta(days=31)
    metrics = escalation_metrics(MetricsFilters(start=now - timedelta(days=31), end=now))
    assert 0.15 < metrics["escalation_rate"] < 0.45
    assert set(metrics["reasons"]) >= {"request", "complexity", "sentiment", "loop"}
    assert set(metrics["priorities"]) >= {"low", "normal", "high", "urgent"}
    wait, resolution = metrics["wait_time"], metrics["resolution_time"]
    # A realistic spread: most pickups within a couple of minutes, a long tail.
    assert 45 < wait["median"] < 240 and wait["p90"] > 2 * wait["median"]
    assert 300 < resolution["median"] < 1800 and resolution["p90"] > resolution["median"]
    kinds = set(history.values_list("channel__kind", flat=True))
    assert kinds == {"website", "whatsapp", "instagram", "api"}
    escalated = Escalation.objects.filter(conversation__in=history)
    assert set(escalated.values_list("status", flat=True)) == {"closed", "cancelled"}
    assert escalated.filter(ticket__isnull=True).count() == 0
    assert (
        escalated.filter(events__kind="claimed").distinct().count()
        == escalated.filter(claimed_at__isnull=False).count()
    )
    # Customer ratings: some of the escalations a person handled, spread over the scale, by
    # agent, team and reason.
    from escalation.selectors import satisfaction_report

    csat = satisfaction_report(MetricsFilters(start=now - timedelta(days=31), end=now))
    handled = escalated.filter(claimed_at__isnull=False).count()
    assert 0.25 * handled < csat["count"] < 0.55 * handled
    assert all(csat["scores"][score] for score in "12345")
    assert 3.2 < csat["average"] < 4.6
    assert len(csat["by_agent"]) >= 3 and len(csat["by_team"]) == 2
    assert len({row["average"] for row in csat["by_agent"]}) > 1  # agents differ
    assert {row["reason"] for row in csat["by_reason"]} >= {"request", "complexity"}
    # Jamie's conversation is untouched by the history.
    assert Escalation.objects.get(conversation_id=4821).status == "queued"
