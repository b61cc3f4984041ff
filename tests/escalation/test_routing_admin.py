"""The admin gives the same clear errors as the Settings screen and the API, and saves through
the routing services."""

import pytest
from django.urls import reverse

from crm.models import AgentProfile
from escalation.models import RoutingRule, RoutingSettings, TeamRouting
from tests.factories import AgentFactory, TeamFactory, deleted_team_id

from .routing_helpers import conversation_for, escalate

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    boss = AgentFactory(display_name="Boss", username="boss", role="manager")
    boss.is_superuser = True
    boss.save()
    client.force_login(boss)
    return client


def _team_routing_form(team, **overrides):
    return {
        "team": team.pk,
        "mode": "manual",
        "strategy": "round_robin",
        "accept_timeout_seconds": 30,
        "max_missed_offers": 3,
        "time_zone": "UTC",
        "weekly_hours": "[]",
        "holidays": "[]",
        "sla_targets": "{}",
        **overrides,
    }


def _agent_form(user, team, **overrides):
    """The admin's agent profile form for ``user``, online in ``team``."""
    return {
        "user": user.pk,
        "display_name": user.agent_profile.display_name,
        "role": "agent",
        "teams": [team.pk],
        "availability": "online",
        "notify_via": "in_app",
        **overrides,
    }


def test_overlapping_hours_and_an_unknown_zone_are_form_errors(admin_client):
    team = TeamFactory(name="Orders")
    response = admin_client.post(
        reverse("admin:escalation_teamrouting_add"),
        _team_routing_form(
            team,
            time_zone="Nowhere/Land",
            weekly_hours='[{"day": "mon", "opens": "09:00", "closes": "12:00"},'
            ' {"day": "mon", "opens": "11:00", "closes": "15:00"}]',
        ),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Unknown time zone" in page and "overlap" in page
    assert not TeamRouting.objects.exists()


def test_a_valid_team_routing_saves_through_the_service(admin_client):
    team = TeamFactory(name="Orders")
    AgentFactory(teams=[team])
    response = admin_client.post(
        reverse("admin:escalation_teamrouting_add"),
        _team_routing_form(team, mode="automatic", sla_targets='{"urgent": 60}'),
    )
    assert response.status_code == 302
    assert TeamRouting.objects.get(team=team).sla_targets == {"urgent": 60}


def test_an_automatic_team_whose_agents_all_have_capacity_zero_is_a_form_error(admin_client):
    team = TeamFactory(name="Orders")
    AgentFactory(teams=[team], capacity=0)
    response = admin_client.post(
        reverse("admin:escalation_teamrouting_add"), _team_routing_form(team, mode="automatic")
    )
    assert response.status_code == 200
    assert "every agent of this team has capacity 0" in response.content.decode()
    assert not TeamRouting.objects.exists()


def test_capacity_zero_for_an_agent_of_an_automatic_team_is_a_form_error(admin_client):
    team = TeamFactory(name="Orders")
    TeamRouting.objects.create(team=team, mode="automatic")
    alex = AgentFactory(display_name="Alex", teams=[team])
    profile = AgentProfile.objects.get(user=alex)
    response = admin_client.post(
        reverse("admin:crm_agentprofile_change", args=[profile.pk]),
        _agent_form(alex, team, capacity=0),
    )
    assert response.status_code == 200
    assert "Capacity 0 with automatic assignment" in response.content.decode()
    profile.refresh_from_db()
    assert profile.capacity == 5


def test_setting_an_agent_online_in_the_admin_gives_them_waiting_work(
    admin_client, django_capture_on_commit_callbacks
):
    team = TeamFactory(name="Orders")
    TeamRouting.objects.create(team=team, mode="automatic", offer_first=False)
    alex = AgentFactory(display_name="Alex", teams=[team], availability="away")
    waiting = escalate(conversation_for(team))
    profile = AgentProfile.objects.get(user=alex)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:crm_agentprofile_change", args=[profile.pk]),
            _agent_form(alex, team, capacity=2),
        )
    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.availability, profile.capacity) == ("online", 2)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.claimed_by) == ("claimed", alex)


def test_a_rule_with_unknown_codes_is_a_form_error(admin_client):
    team = TeamFactory(name="Orders")
    response = admin_client.post(
        reverse("admin:escalation_routingrule_add"),
        {
            "name": "Odd",
            "position": 1,
            "is_active": "on",
            "reasons": '["shouting"]',
            "topics": "[]",
            "channel_kinds": "[]",
            "languages": "[]",
            "team": team.pk,
        },
    )
    assert response.status_code == 200
    assert "Unknown reasons: shouting" in response.content.decode()
    assert not RoutingRule.objects.exists()


def test_a_rule_for_a_team_deleted_while_the_form_was_open_is_a_clear_form_error(admin_client):
    gone_id = deleted_team_id()
    response = admin_client.post(
        reverse("admin:escalation_routingrule_add"),
        {
            "name": "Ghost",
            "position": 1,
            "is_active": "on",
            "reasons": "[]",
            "topics": "[]",
            "channel_kinds": "[]",
            "languages": "[]",
            "team": gone_id,
        },
    )
    assert response.status_code == 200
    assert "That team no longer exists (deleted?): choose another." in response.content.decode()
    assert not RoutingRule.objects.exists()


def test_a_default_team_deleted_while_the_form_was_open_is_a_clear_form_error(admin_client):
    settings_row = RoutingSettings.load()
    gone_id = deleted_team_id()
    response = admin_client.post(
        reverse("admin:escalation_routingsettings_change", args=[settings_row.pk]),
        {
            "default_team": gone_id,
            "sla_targets": '{"urgent": 120, "high": 300, "normal": 900, "low": 3600}',
            "ageing_seconds": "{}",
            "sentiment_raise_step": "0.2",
        },
    )
    assert response.status_code == 200
    assert "That team no longer exists (deleted?): choose another." in response.content.decode()


def test_deleting_a_team_named_by_a_rule_is_refused_and_says_why(admin_client):
    team = TeamFactory(name="Orders")
    RoutingRule.objects.create(name="Orders rule", team=team)
    response = admin_client.post(reverse("admin:crm_team_delete", args=[team.pk]), {"post": "yes"})
    assert response.status_code == 200
    assert "Orders rule" in response.content.decode()
    assert team.__class__.objects.filter(pk=team.pk).exists()
