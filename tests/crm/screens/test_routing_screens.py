"""The routing screens: the queue's SLA, after-hours and offer cells, accepting and declining
from the queue, and Settings → Routing (teams, rules, defaults) with clear errors."""

from datetime import timedelta

import pytest
from django.urls import reverse

from escalation.models import Escalation, RoutingRule, RoutingSettings, TeamRouting
from escalation.routing import services as routing
from tests.factories import (
    AgentFactory,
    ChannelFactory,
    ConversationFactory,
    TeamFactory,
    deleted_team_id,
)

pytestmark = pytest.mark.django_db


def _escalate_for(team, reason="request"):
    from escalation import services

    escalation, _ = services.escalate_conversation(
        conversation=ConversationFactory(channel=ChannelFactory(default_team=team)),
        reason=reason,
        priority="high",
        triggered_by="detection",
    )
    return escalation


def test_the_queue_shows_time_left_and_who_an_escalation_is_offered_to(client, agent):
    team = TeamFactory(name="Orders")
    TeamRouting.objects.create(team=team, mode="automatic")
    marina_profile = agent.agent_profile
    marina_profile.teams.add(team)
    escalation = _escalate_for(team)
    routing.route_escalation(escalation_id=escalation.pk)

    client.force_login(agent)
    page = client.get(reverse("crm:queue")).content.decode()
    assert "left</span>" in page and 'data-sla-due="' in page
    assert "Offered to you" in page and reverse("crm:accept-offer", args=[escalation.pk]) in page

    other = AgentFactory(display_name="Alex")
    client.force_login(other)
    page = client.get(reverse("crm:queue")).content.decode()
    assert "Offered to Marina" in page and "Offered to you" not in page
    assert "{%" not in page and "{{" not in page


def test_accepting_from_the_queue_opens_the_conversation(client, agent):
    team = TeamFactory(name="Orders")
    TeamRouting.objects.create(team=team, mode="automatic")
    agent.agent_profile.teams.add(team)
    escalation = _escalate_for(team)
    routing.route_escalation(escalation_id=escalation.pk)
    client.force_login(agent)

    response = client.post(
        reverse("crm:accept-offer", args=[escalation.pk]), HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/crm/conversations/{escalation.conversation_id}/"
    escalation.refresh_from_db()
    assert escalation.claimed_by == agent


def test_accepting_someone_elses_offer_is_a_toast_not_a_500(client, agent):
    team = TeamFactory(name="Orders")
    TeamRouting.objects.create(team=team, mode="automatic")
    escalation = _escalate_for(team)
    client.force_login(agent)
    response = client.post(
        reverse("crm:accept-offer", args=[escalation.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert "no longer yours" in response.content.decode()


def test_declining_from_the_queue(client, agent):
    team = TeamFactory(name="Orders")
    TeamRouting.objects.create(team=team, mode="automatic")
    agent.agent_profile.teams.add(team)
    escalation = _escalate_for(team)
    routing.route_escalation(escalation_id=escalation.pk)
    client.force_login(agent)
    assert client.post(reverse("crm:decline-offer", args=[escalation.pk])).status_code == 302
    escalation.refresh_from_db()
    assert escalation.offered_to is None


def test_the_queue_shows_a_breached_sla_in_red_without_javascript(client, agent):
    from escalation.routing import services as routing_services

    escalation = _escalate_for(TeamFactory(name="Orders"))
    routing_services.mark_sla_breach(
        escalation_id=escalation.pk, now=escalation.sla_due_at + timedelta(seconds=1)
    )
    client.force_login(agent)
    page = client.get(reverse("crm:queue")).content.decode()
    assert '<span class="sla sla-red"' in page and "SLA breached</span>" in page
    assert page.count('class="sla sla-red"') == 1


def test_the_queue_says_after_hours(client, agent):
    team = TeamFactory(name="Billing")
    TeamRouting.objects.create(team=team, weekly_hours=[], holidays=["2000-01-01"])
    escalation = _escalate_for(team)
    Escalation.objects.filter(pk=escalation.pk).update(
        after_hours_until="2999-01-01T09:00:00+00:00"
    )
    client.force_login(agent)
    page = client.get(reverse("crm:queue")).content.decode()
    assert "After hours</div>" in page
    # The reopening in the server's zone, named (not "UTC" whatever the zone).
    assert "The team is closed; it opens Tue 09:00 UTC" in page


def test_the_after_hours_reopening_is_named_in_the_servers_zone(client, agent, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    team = TeamFactory(name="Billing")
    escalation = _escalate_for(team)
    Escalation.objects.filter(pk=escalation.pk).update(
        after_hours_until="2999-01-01T09:00:00+00:00"
    )
    client.force_login(agent)
    page = client.get(reverse("crm:queue")).content.decode()
    assert "The team is closed; it opens Tue 10:00 CET" in page


def test_routing_settings_are_for_managers(client, agent, manager):
    client.force_login(agent)
    assert client.get(reverse("crm:routing-settings")).status_code == 403
    client.force_login(manager)
    page = client.get(reverse("crm:routing-settings"))
    assert page.status_code == 200
    assert "Routing rules" in page.content.decode()


def test_a_manager_makes_a_team_automatic_with_hours(manager_client):
    team = TeamFactory(name="Orders")
    AgentFactory(teams=[team])
    prefix = f"team-{team.pk}"
    response = manager_client.post(
        reverse("crm:routing-team", args=[team.pk]),
        {
            f"{prefix}-mode": "automatic",
            f"{prefix}-strategy": "least_busy",
            f"{prefix}-offer_first": "on",
            f"{prefix}-accept_timeout_seconds": "30",
            f"{prefix}-max_missed_offers": "3",
            f"{prefix}-time_zone": "Europe/Berlin",
            f"{prefix}-hours_text": "mon 09:00-17:00\ntue 09:00-17:00",
            f"{prefix}-holidays_text": "2026-12-25",
            f"{prefix}-sla_urgent": "60",
        },
    )
    assert response.status_code == 302
    saved = TeamRouting.objects.get(team=team)
    assert (saved.mode, saved.strategy, saved.time_zone) == (
        "automatic",
        "least_busy",
        "Europe/Berlin",
    )
    assert saved.weekly_hours[1] == {"day": "tue", "opens": "09:00", "closes": "17:00"}
    assert saved.sla_targets == {"urgent": 60}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hours_text", "mon 09:00-13:00\nmon 12:00-17:00", "overlap"),
        ("time_zone", "Atlantis/Capital", "Unknown time zone"),
        ("holidays_text", "next tuesday", "not a date"),
    ],
)
def test_bad_team_settings_show_the_error_and_save_nothing(manager_client, field, value, message):
    team = TeamFactory(name="Orders")
    prefix = f"team-{team.pk}"
    data = {
        f"{prefix}-mode": "manual",
        f"{prefix}-strategy": "round_robin",
        f"{prefix}-accept_timeout_seconds": "30",
        f"{prefix}-max_missed_offers": "3",
        f"{prefix}-time_zone": "UTC",
        f"{prefix}-{field}": value,
    }
    response = manager_client.post(reverse("crm:routing-team", args=[team.pk]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TeamRouting.objects.filter(team=team).exists()


def test_automatic_with_capacity_zero_shows_the_error(manager_client):
    team = TeamFactory(name="Orders")
    AgentFactory(teams=[team], capacity=0)
    prefix = f"team-{team.pk}"
    response = manager_client.post(
        reverse("crm:routing-team", args=[team.pk]),
        {
            f"{prefix}-mode": "automatic",
            f"{prefix}-strategy": "round_robin",
            f"{prefix}-accept_timeout_seconds": "30",
            f"{prefix}-max_missed_offers": "3",
            f"{prefix}-time_zone": "UTC",
        },
    )
    assert response.status_code == 400
    assert "capacity above 0" in response.content.decode()


def test_a_manager_adds_orders_moves_switches_off_and_deletes_rules(manager_client):
    orders = TeamFactory(name="Orders")
    billing = TeamFactory(name="Billing")
    for name, team, topic in [
        ("Billing", billing, "billing_dispute"),
        ("Orders", orders, "orders"),
    ]:
        response = manager_client.post(
            reverse("crm:routing-rule-add"),
            {
                "rule-name": name,
                "rule-team": team.pk,
                "rule-topics": [topic],
                "rule-languages": "en, de",
            },
        )
        assert response.status_code == 302
    second = RoutingRule.objects.get(name="Orders")
    assert second.languages == ["de", "en"]
    manager_client.post(reverse("crm:routing-rule", args=[second.pk]), {"action": "up"})
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["Orders", "Billing"]
    manager_client.post(reverse("crm:routing-rule", args=[second.pk]), {"action": "toggle"})
    second.refresh_from_db()
    assert not second.is_active
    manager_client.post(reverse("crm:routing-rule", args=[second.pk]), {"action": "delete"})
    assert not RoutingRule.objects.filter(pk=second.pk).exists()


def test_a_rule_for_a_team_that_was_deleted_is_refused(manager_client):
    # The page was opened with the team in its list; the team was deleted before the save.
    gone_id = deleted_team_id()
    response = manager_client.post(
        reverse("crm:routing-rule-add"), {"rule-name": "Ghost", "rule-team": str(gone_id)}
    )
    assert response.status_code == 400
    assert "That team no longer exists (deleted?): choose another." in response.content.decode()
    assert not RoutingRule.objects.exists()


def test_a_default_team_that_was_deleted_is_refused(manager_client):
    gone_id = deleted_team_id()
    response = manager_client.post(
        reverse("crm:routing-defaults"),
        {
            "defaults-default_team": str(gone_id),
            "defaults-sla_urgent": "90",
            "defaults-sla_high": "300",
            "defaults-sla_normal": "900",
            "defaults-sla_low": "3600",
            "defaults-sentiment_raise_step": "0.25",
        },
    )
    assert response.status_code == 400
    assert "That team no longer exists (deleted?): choose another." in response.content.decode()
    assert RoutingSettings.load().default_team is None


def test_a_manager_saves_the_defaults(manager_client):
    team = TeamFactory(name="Support")
    response = manager_client.post(
        reverse("crm:routing-defaults"),
        {
            "defaults-default_team": team.pk,
            "defaults-sla_urgent": "90",
            "defaults-sla_high": "300",
            "defaults-sla_normal": "900",
            "defaults-sla_low": "3600",
            "defaults-age_low": "600",
            "defaults-sentiment_raise_step": "0.25",
        },
    )
    assert response.status_code == 302
    saved = RoutingSettings.load()
    assert saved.default_team == team and saved.sla_targets["urgent"] == 90
    assert saved.ageing_seconds == {"low": 600}


def test_analytics_shows_sla_attainment_and_first_reply(client, manager, agent):
    from crm import services as crm_services
    from escalation import services

    team = TeamFactory(name="Orders")
    in_time = _escalate_for(team)
    services.take_over_escalation(escalation_id=in_time.pk, agent=agent)
    crm_services.send_agent_message(conversation=in_time.conversation, agent=agent, text="Hi!")
    late = _escalate_for(team, reason="sentiment")
    Escalation.objects.filter(pk=late.pk).update(
        sla_due_at=late.escalated_at - timedelta(seconds=1)
    )
    services.take_over_escalation(escalation_id=late.pk, agent=agent)

    client.force_login(manager)
    page = client.get(reverse("crm:analytics")).content.decode()
    assert "SLA: time to takeover" in page
    assert "1 of 2 picked up in time" in page
    assert '<th scope="row">Orders</th><td>1 / 2</td><td>50%</td>' in page
    assert '<th scope="row">High</th><td>1 / 2</td>' in page
    assert "<caption>By reason</caption>" in page
    assert '<th scope="row">Asked for a person</th><td>1 / 1</td><td>100%</td>' in page
    assert '<th scope="row">Frustration</th><td>0 / 1</td><td>0%</td>' in page
    assert "(1 reply)" in page
