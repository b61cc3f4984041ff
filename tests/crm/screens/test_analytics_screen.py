"""Analytics: escalation rate, wait and resolution time (median, p90), reasons — as charts."""

from datetime import timedelta

from django.utils import timezone

from crm.screens import charts
from escalation import services as escalation_services
from escalation.models import Escalation
from tests.factories import ChannelFactory, ConversationFactory


def test_the_numbers_and_the_charts_agree(manager_client, manager, escalate):
    ConversationFactory()  # handled by the AI, not escalated
    first = escalate(reason="request")
    second = escalate(reason="sentiment")
    escalate(reason="sentiment")
    now = timezone.now()
    for escalation, wait in [(first, 60), (second, 180)]:
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=manager)
        Escalation.objects.filter(pk=escalation.pk).update(
            escalated_at=now - timedelta(seconds=wait + 5), claimed_at=now - timedelta(seconds=5)
        )
    html = manager_client.get("/crm/analytics/?period=7").content.decode()
    assert "3 of 4 conversations escalated" in html
    assert ">75.0%<" in html  # the ring
    assert 'data-metric="wait-median">2m 00s<' in html
    assert "<td>2</td><td>120.0</td><td>120.0</td><td>168.0</td>" in html  # wait row, p90
    reasons = html[html.index('id="reasons"') : html.index('id="priorities"')]
    assert "Frustration" in reasons and 'width="100.0%"' in reasons and 'width="50.0%"' in reasons


def test_channel_and_team_filters_narrow_the_metrics(manager_client, escalate, team):
    whatsapp = ChannelFactory(kind="whatsapp")
    escalate(channel=whatsapp)
    escalate(team=team)
    html = manager_client.get("/crm/analytics/?channel=whatsapp").content.decode()
    assert "1 of 1 conversations escalated" in html
    html = manager_client.get(f"/crm/analytics/?team={team.pk}").content.decode()
    assert "1 of 1 conversations escalated" in html
    assert manager_client.get("/crm/analytics/?period=999&team=x").status_code == 200


def test_a_date_range_overrides_the_preset_period(manager_client, escalate):
    old = escalate(reason="loop")
    Escalation.objects.filter(pk=old.pk).update(escalated_at=timezone.now() - timedelta(days=40))
    escalate(reason="request")
    today = timezone.localdate()
    start = (today - timedelta(days=45)).isoformat()
    end = (today - timedelta(days=35)).isoformat()
    html = manager_client.get(f"/crm/analytics/?start={start}&end={end}").content.decode()
    reasons = html[html.index('id="reasons"') : html.index('id="priorities"')]
    assert "Conversations: 0 · Escalations: 1" in html
    assert "Unresolved loop" in reasons
    backwards = manager_client.get(f"/crm/analytics/?start={end}&end={start}")
    assert backwards.status_code == 200
    assert "The end date is before the start date." in backwards.content.decode()
    assert "Escalations: 1 ·" in backwards.content.decode()  # dates ignored: the last 7 days


def test_chart_helpers():
    assert charts.duration(None) == "—"
    assert charts.duration(45) == "45s"
    assert charts.duration(200) == "3m 20s"
    assert charts.duration(7500) == "2h 05m"
    bars = charts.bars([("a", 2), ("b", 1), ("c", 0)])
    assert [bar["percent"] for bar in bars] == [100.0, 50.0, 0]
    assert charts.donut(0.25)["percent"] == 25.0
    line = charts.sentiment_line([(1, 1.0), (2, -1.0)])
    assert line["points"][0].y == line["top_y"] and line["points"][1].y == line["bottom_y"]


def test_escalations_per_day_are_drawn_for_every_day_of_the_period(manager_client, escalate):
    old = escalate()
    Escalation.objects.filter(pk=old.pk).update(escalated_at=timezone.now() - timedelta(days=3))
    escalate()
    escalate()
    html = manager_client.get("/crm/analytics/?period=7").content.decode()
    daily = html[html.index('id="daily"') : html.index('id="reasons"')]
    assert daily.count('class="column"') in (7, 8)  # each day, today included
    assert "max 2" in daily
    assert daily.count(": 1</title>") == 1 and daily.count(": 2</title>") == 1


def test_customer_satisfaction_by_agent_team_and_reason(
    manager_client, manager, agent, escalate, team
):
    from escalation import satisfaction

    for holder, score, reason in ((agent, 4, "request"), (manager, 2, "sentiment")):
        escalation = escalate(reason=reason, team=team)
        escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=holder)
        escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=holder)
        satisfaction.rate_escalation(
            conversation_id=escalation.conversation_id,
            escalation_id=escalation.pk,
            score=score,
            comment="ok",
        )
    html = manager_client.get("/crm/analytics/?period=7").content.decode()
    csat = html[html.index('id="csat"') : html.index('id="verdict-precision"')]
    assert '<strong class="big" id="csat-average">3.0</strong> / 5' in csat
    assert "2 ratings" in csat and "50% rated 4 or 5" in csat
    by_agent = csat[csat.index('id="csat-by-agent"') : csat.index('id="csat-by-team"')]
    assert by_agent.index("Marina") < by_agent.index(manager.agent_profile.display_name)
    assert 'width="80.0%"' in by_agent and 'width="40.0%"' in by_agent  # 4 and 2 of 5
    assert team.name in csat[csat.index('id="csat-by-team"') :]
    by_reason = csat[csat.index('id="csat-by-reason"') :]
    assert "Asked for a person" in by_reason and "Frustration" in by_reason

    # the contact page lists the customer's rating
    rated = escalation.conversation.contact
    page = manager_client.get(f"/crm/contacts/{rated.pk}/").content.decode()
    ratings = page[page.index('id="contact-ratings"') :]
    assert 'data-rating="2"' in ratings and "“ok”" in ratings


def test_no_ratings_yet_says_so(manager_client):
    html = manager_client.get("/crm/analytics/").content.decode()
    assert "No customer has rated a conversation in this period yet." in html
