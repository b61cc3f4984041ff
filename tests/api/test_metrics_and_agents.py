"""Escalation metrics and agents' availability over the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import AgentProfile
from escalation import services
from escalation.models import Escalation, Priority
from tests.api.conftest import error_of, token_client
from tests.factories import ChannelFactory, ConversationFactory, UserFactory

pytestmark = pytest.mark.django_db

METRICS = "/api/v1/metrics/escalations/"


def picked_up(agent, *, wait, resolve_after=None, channel=None, reason="request"):
    conversation = ConversationFactory(**({"channel": channel} if channel else {}))
    escalation, _ = services.escalate_conversation(
        conversation=conversation,
        reason=reason,
        priority=Priority.NORMAL,
        triggered_by="detection",
    )
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    if resolve_after is not None:
        services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    now = timezone.now()
    start = now - timedelta(hours=1)
    Escalation.objects.filter(pk=escalation.pk).update(
        escalated_at=start,
        claimed_at=start + timedelta(seconds=wait),
        resolved_at=(start + timedelta(seconds=wait + resolve_after))
        if resolve_after is not None
        else None,
    )
    return escalation


def test_metrics_rate_times_and_reasons(api, agent):
    for wait in (10, 20, 30, 40, 100):
        picked_up(agent, wait=wait, resolve_after=wait * 10)
    ConversationFactory()  # handled by the AI alone
    body = api.get(METRICS).json()
    assert body["conversations"] == 6 and body["escalations"] == 5
    assert body["escalation_rate"] == pytest.approx(5 / 6, abs=1e-3)
    assert body["wait_time"] == {"count": 5, "mean": 40.0, "median": 30.0, "p90": 76.0}
    assert body["resolution_time"]["median"] == 300.0
    assert body["reasons"] == {"request": 5}


def test_metrics_carry_customer_satisfaction_by_agent_team_and_reason(api, agent, other_agent):
    from escalation import satisfaction
    from tests.factories import TeamFactory

    billing = TeamFactory(name="Billing")
    for holder, score, reason in (
        (agent, 5, "request"),
        (agent, 4, "loop"),
        (other_agent, 2, "loop"),
    ):
        escalation = picked_up(holder, wait=10, resolve_after=60, reason=reason)
        Escalation.objects.filter(pk=escalation.pk).update(team=billing)
        satisfaction.rate_escalation(
            conversation_id=escalation.conversation_id, escalation_id=escalation.pk, score=score
        )
    picked_up(agent, wait=10, resolve_after=60)  # resolved, not rated
    csat = api.get(METRICS).json()["satisfaction"]
    assert (csat["count"], csat["average"], csat["satisfied_share"]) == (3, 3.67, 0.6667)
    assert csat["scores"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert csat["by_agent"] == [
        {"id": agent.pk, "name": "Marina", "count": 2, "average": 4.5},
        {"id": other_agent.pk, "name": "Alex", "count": 1, "average": 2.0},
    ]
    assert csat["by_team"] == [{"id": billing.pk, "name": "Billing", "count": 3, "average": 3.67}]
    assert csat["by_reason"] == [
        {"reason": "loop", "count": 2, "average": 3.0},
        {"reason": "request", "count": 1, "average": 5.0},
    ]
    empty = api.get(METRICS, {"channel": "whatsapp"}).json()["satisfaction"]
    assert (empty["count"], empty["average"], empty["by_agent"]) == (0, None, [])


def test_metrics_for_a_channel_and_a_period(api, agent):
    whatsapp = ChannelFactory(kind="whatsapp")
    picked_up(agent, wait=60, channel=whatsapp, reason="loop")
    picked_up(agent, wait=5)
    body = api.get(METRICS, {"channel": "whatsapp"}).json()
    assert body["escalations"] == 1 and body["reasons"] == {"loop": 1}
    assert body["wait_time"]["mean"] == 60.0
    old = api.get(METRICS, {"from": "2020-01-01", "to": "2020-02-01"}).json()
    assert old["escalations"] == 0 and old["wait_time"]["mean"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"from": "soon"},
        {"to": ""},
        {"channel": ["website", "whatsapp"]},
        {"channel": "pigeon"},
        {"team": "0"},
    ],
)
def test_metrics_reject_bad_parameters(api, params):
    response = api.get(METRICS, params)
    assert response.status_code == 400
    assert error_of(response)["fields"]


def test_a_period_that_ends_before_it_starts_is_empty(api):
    body = api.get(METRICS, {"from": "2024-02-01", "to": "2024-01-01"}).json()
    assert body["conversations"] == body["escalations"] == 0
    assert body["period"]["from"].startswith("2024-02-01")


@pytest.mark.parametrize("query", ["offset=null", "limit=0", "limit=201", "limit=5&limit=6"])
def test_a_list_refuses_paging_it_cannot_honour(api, query):
    response = api.get(f"/api/v1/agents/?{query}")
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) & {"limit", "offset"}


def test_a_body_value_of_another_json_type_is_refused(manager):
    response = manager.post(
        "/api/v1/webhooks/",
        {"url": "https://hooks.example.com/x", "events": ["ticket.created"], "is_active": 0},
        format="json",
    )
    assert response.status_code == 400
    assert "is_active" in error_of(response)["fields"]


def test_agents_with_availability(api, agent, other_agent):
    AgentProfile.objects.filter(user=other_agent).update(availability="away")
    rows = api.get("/api/v1/agents/").json()["results"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["Marina"]["availability"] == "online"
    assert by_name["Alex"]["availability"] == "away"
    online = api.get("/api/v1/agents/", {"availability": "online"}).json()["results"]
    assert [row["name"] for row in online] == ["Marina"]


def test_set_own_availability(api, agent):
    response = api.post("/api/v1/agents/me/availability/", {"availability": "away"}, format="json")
    assert response.status_code == 200 and response.json()["availability"] == "away"
    assert AgentProfile.objects.get(user=agent).availability == "away"
    assert api.get("/api/v1/agents/me/").json()["username"] == "marina"


def test_bad_availability_is_a_field_error(api):
    response = api.post(
        "/api/v1/agents/me/availability/", {"availability": "asleep"}, format="json"
    )
    assert response.status_code == 400
    assert "availability" in error_of(response)["fields"]


def test_a_token_without_an_agent_profile_cannot_set_availability(db):
    client = token_client(UserFactory(username="integration-bot"), "read,write")
    response = client.post(
        "/api/v1/agents/me/availability/", {"availability": "online"}, format="json"
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "not_an_agent"


def test_reader_cannot_set_availability(reader):
    response = reader.post(
        "/api/v1/agents/me/availability/", {"availability": "online"}, format="json"
    )
    assert response.status_code == 403
