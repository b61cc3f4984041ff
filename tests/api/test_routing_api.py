"""/api/v1/teams/ and /api/v1/agents/{id}/ (routing settings, managers only for changes),
escalation rows with their routing fields, and an automatic team routed end to end through the
API: offered, accepted, expired and offered again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import AgentProfile
from escalation.models import Escalation, TeamRouting
from escalation.routing import tasks
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory

from .conftest import error_of, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(name="Orders")


def test_a_manager_switches_a_team_to_automatic_with_hours_and_sla(manager, team):
    AgentFactory(teams=[team])
    response = manager.patch(
        f"/api/v1/teams/{team.pk}/",
        {
            "mode": "automatic",
            "strategy": "least_busy",
            "accept_timeout_seconds": 45,
            "time_zone": "Europe/Berlin",
            "weekly_hours": [{"day": "mon", "opens": "09:00", "closes": "17:00"}],
            "holidays": ["2026-12-25"],
            "sla_targets": {"urgent": 60},
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["mode"], body["strategy"], body["accept_timeout_seconds"]) == (
        "automatic",
        "least_busy",
        45,
    )
    assert body["weekly_hours"] == [{"day": "mon", "opens": "09:00", "closes": "17:00"}]
    assert body["sla_targets"] == {"urgent": 60}
    routing = TeamRouting.objects.get(team=team)
    assert routing.is_automatic and routing.time_zone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone"),
        (
            {
                "weekly_hours": [
                    {"day": "mon", "opens": "09:00", "closes": "13:00"},
                    {"day": "mon", "opens": "12:00", "closes": "18:00"},
                ]
            },
            "weekly_hours",
            "overlap",
        ),
        (
            {"weekly_hours": [{"day": "mon", "opens": "9", "closes": "17:00"}]},
            "weekly_hours",
            "09:00",
        ),
        ({"accept_timeout_seconds": 1}, "accept_timeout_seconds", "greater than or equal to 5"),
        ({"sla_targets": {"urgent": 1}}, "sla_targets.urgent", "greater than or equal to 10"),
    ],
)
def test_bad_team_settings_are_a_400_naming_the_field(manager, team, change, field, words):
    response = manager.patch(f"/api/v1/teams/{team.pk}/", change, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert words in " ".join(error["fields"][field])


def test_automatic_with_every_agent_at_capacity_zero_is_refused(manager, team):
    AgentFactory(teams=[team], capacity=0)
    response = manager.patch(f"/api/v1/teams/{team.pk}/", {"mode": "automatic"}, format="json")
    assert response.status_code == 400
    assert "capacity above 0" in error_of(response)["fields"]["mode"][0]


def test_changing_routing_needs_the_manage_scope(api, agent, team):
    response = api.patch(f"/api/v1/teams/{team.pk}/", {"mode": "automatic"}, format="json")
    assert response.status_code == 403
    assert api.get(f"/api/v1/teams/{team.pk}/").status_code == 200
    # An agent's own read+write token cannot raise their capacity or change their teams.
    response = api.patch(f"/api/v1/agents/{agent.pk}/", {"capacity": 50}, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "insufficient_scope"
    assert AgentProfile.objects.get(user=agent).capacity != 50
    assert api.get(f"/api/v1/agents/{agent.pk}/").status_code == 200


def test_a_manager_sets_an_agents_capacity_teams_and_availability(manager, team):
    alex = AgentFactory(availability="away")
    response = manager.patch(
        f"/api/v1/agents/{alex.pk}/",
        {"capacity": 3, "teams": [team.pk], "availability": "online"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["capacity"], response.json()["teams"]) == (3, [team.pk])
    profile = AgentProfile.objects.get(user=alex)
    assert (profile.capacity, profile.availability) == (3, "online")


def test_capacity_zero_in_an_automatic_team_is_a_400(manager, team):
    TeamRouting.objects.create(team=team, mode="automatic")
    alex = AgentFactory(teams=[team])
    response = manager.patch(f"/api/v1/agents/{alex.pk}/", {"capacity": 0}, format="json")
    assert response.status_code == 400
    assert "Capacity 0 with automatic assignment" in error_of(response)["fields"]["capacity"][0]


def test_unknown_teams_and_agents(manager):
    assert (
        manager.patch("/api/v1/agents/99999999999/", {"capacity": 1}, format="json").status_code
        == 404
    )
    alex = AgentFactory()
    response = manager.patch(f"/api/v1/agents/{alex.pk}/", {"teams": [424242]}, format="json")
    assert response.status_code == 400
    assert "No team with id 424242" in error_of(response)["fields"]["teams"][0]
    assert manager.get("/api/v1/teams/424242/").status_code == 404


def test_an_automatic_team_routes_end_to_end_through_the_api(
    manager, team, django_capture_on_commit_callbacks
):
    marina = AgentFactory(display_name="Marina", teams=[team], capacity=2)
    alex = AgentFactory(display_name="Alex", teams=[team], capacity=2)
    manager.patch(
        f"/api/v1/teams/{team.pk}/",
        {"mode": "automatic", "strategy": "round_robin", "accept_timeout_seconds": 30},
        format="json",
    )
    ChannelFactory(kind="api", key="shop", default_team=team)
    with django_capture_on_commit_callbacks(execute=True):
        started = manager.post(
            "/api/v1/conversations/",
            {"channel": "shop", "contact": {"name": "Jamie"}, "text": "hello"},
            format="json",
        )
        conversation = started.json()["id"]
        escalated = manager.post(
            f"/api/v1/conversations/{conversation}/escalate/", {"priority": "high"}, format="json"
        )
    assert escalated.status_code == 201
    row = manager.get(f"/api/v1/escalations/{escalated.json()['id']}/").json()
    first = row["offered_to"]["id"]
    assert row["sla_due_at"] and row["sla_breached"] is False and row["assigned_to"] is None

    # Not accepted in time: the sweep offers it to the other agent.
    escalation = Escalation.objects.get(pk=row["id"])
    Escalation.objects.filter(pk=escalation.pk).update(
        offer_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.expire_offers() == 1
    row = manager.get(f"/api/v1/escalations/{row['id']}/").json()
    second = row["offered_to"]["id"]
    assert second != first
    kinds = [event["kind"] for event in row["events"]]
    assert kinds.count("offered") == 2 and "offer_expired" in kinds

    # The first agent can no longer accept; the second does.
    loser = marina if first == marina.pk else alex
    winner = alex if loser == marina else marina
    refused = token_client(loser).post(f"/api/v1/escalations/{row['id']}/accept/")
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "offer_not_yours"
    accepted = token_client(winner).post(f"/api/v1/escalations/{row['id']}/accept/")
    assert accepted.status_code == 200
    assert accepted.json()["assigned_to"]["id"] == winner.pk
    assert accepted.json()["status"] == "claimed"


def test_queue_rows_carry_the_routing_fields_with_the_matched_rule(api, team):
    from escalation import services
    from escalation.routing import services as routing_services

    rule = routing_services.save_rule(name="Angry customers", reasons=["sentiment"], team=team)
    opening_day = (timezone.now() + timedelta(days=3)).strftime("%a").lower()
    TeamRouting.objects.create(  # closed now: open only on a weekday three days away
        team=team,
        time_zone="UTC",
        weekly_hours=[{"day": opening_day, "opens": "09:00", "closes": "17:00"}],
    )
    escalation, _created = services.escalate_conversation(
        conversation=ConversationFactory(),
        reason="sentiment",
        priority="high",
        triggered_by="detection",
    )
    unmatched, _created = services.escalate_conversation(
        conversation=ConversationFactory(),
        reason="request",
        priority="low",
        triggered_by="detection",
    )

    rows = {row["id"]: row for row in api.get("/api/v1/escalations/").json()["results"]}
    row = rows[escalation.pk]
    assert row["routing_rule"] == {"id": rule.pk, "name": "Angry customers"}
    assert row["team"]["id"] == team.pk
    assert (row["assigned_to"], row["offered_to"], row["sla_breached"]) == (None, None, False)
    assert row["sla_due_at"] and row["after_hours_until"]
    assert rows[unmatched.pk]["routing_rule"] is None
    assert rows[unmatched.pk]["after_hours_until"] is None
    detail = api.get(f"/api/v1/escalations/{escalation.pk}/").json()
    assert detail["routing_rule"] == row["routing_rule"]
