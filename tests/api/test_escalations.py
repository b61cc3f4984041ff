"""Escalations over the API: the queue, one escalation, and every transition with its errors."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Conversation
from escalation import services
from escalation.models import Escalation, Priority
from tests.api.conftest import error_of, token_client
from tests.factories import ChannelFactory, ConversationFactory, TeamFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/escalations/"


def escalate(conversation=None, *, reason="request", priority=Priority.NORMAL, ago=0):
    conversation = conversation or ConversationFactory()
    escalation, _created = services.escalate_conversation(
        conversation=conversation, reason=reason, priority=priority, triggered_by="detection"
    )
    if ago:
        Escalation.objects.filter(pk=escalation.pk).update(
            escalated_at=timezone.now() - timedelta(seconds=ago)
        )
    return escalation


def test_queue_rows_in_screen_order_with_contract_fields(api):
    old_normal = escalate(ago=600)
    urgent = escalate(priority=Priority.URGENT, ago=10)
    new_normal = escalate(ago=5)
    response = api.get(URL)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [urgent.pk, old_normal.pk, new_normal.pk]
    row = rows[1]
    assert {
        "id",
        "conversation",
        "status",
        "reason",
        "priority",
        "wait_seconds",
        "channel",
        "contact",
    } <= set(row)
    assert row["status"] == "queued" and row["priority"] == "normal"
    assert 599 <= row["wait_seconds"] <= 660
    assert row["channel"] == "website" and row["contact"]["name"]


def test_a_queued_row_says_where_the_customer_stands(api, agent, settings):
    """The conversation's `queue` on each queued escalation: the same place, estimate and
    sentence; null once picked up (and for rows that are not queued)."""
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "DEFAULT_PICKUP_SECONDS": 120}
    first, second = escalate(ago=60), escalate(ago=30)
    expected = {
        "position": 2,
        "wait_minutes": 4,
        "text": "You are number 2 in the queue — about 4 minutes.",
    }
    rows = {row["id"]: row["queue"] for row in api.get(URL).json()["results"]}
    assert rows[second.pk] == expected
    assert rows[first.pk]["position"] == 1 and rows[first.pk]["text"].startswith("You are number 1")
    assert api.get(f"{URL}{second.pk}/").json()["queue"] == expected
    conversation = api.get(f"/api/v1/conversations/{second.conversation_id}/").json()
    assert conversation["queue"] == expected

    services.take_over_escalation(escalation_id=first.pk, agent=agent)
    assert api.get(f"{URL}{first.pk}/").json()["queue"] is None
    rows = {
        row["id"]: row["queue"] for row in api.get(URL, {"status": "claimed"}).json()["results"]
    }
    assert rows == {first.pk: None}
    assert api.get(f"{URL}{second.pk}/").json()["queue"]["position"] == 1


def test_the_queue_reads_the_places_in_a_fixed_number_of_queries(
    api, django_assert_max_num_queries
):
    teams = [TeamFactory(name=f"Team {i}") for i in range(3)]
    escalate()
    escalate(ConversationFactory(team=teams[0]))  # a team's queue and the team-less one
    with django_assert_max_num_queries(40) as few:
        api.get(URL)
    for team in teams * 2:
        escalate(ConversationFactory(team=team))
    with django_assert_max_num_queries(len(few.captured_queries)):
        results = api.get(URL).json()["results"]
    assert len(results) == 8 and all(row["queue"] for row in results)


def test_queue_filters(api):
    billing = TeamFactory(name="Billing")
    whatsapp = ChannelFactory(kind="whatsapp", default_team=billing)
    wanted = escalate(
        ConversationFactory(channel=whatsapp), reason="sentiment", priority=Priority.HIGH, ago=400
    )
    escalate(reason="sentiment", priority=Priority.HIGH, ago=400)  # website
    escalate(ConversationFactory(channel=whatsapp), reason="loop", ago=30)
    response = api.get(
        URL,
        {
            "status": "queued",
            "channel": "whatsapp",
            "priority": "high",
            "min_wait": 300,
            "max_wait": 900,
            "team": billing.pk,
            "reason": "sentiment",
        },
    )
    assert [row["id"] for row in response.json()["results"]] == [wanted.pk]


@pytest.mark.parametrize(
    "params",
    [{"priority": "meh"}, {"min_wait": -1}, {"channel": "fax"}, {"status": "lost"}, {"team": "x"}],
)
def test_queue_rejects_bad_filters(api, params):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert set(params) <= set(error_of(response)["fields"])


def test_read_one_with_summary_reason_and_signals(api):
    escalation = escalate()
    body = api.get(f"{URL}{escalation.pk}/").json()
    assert body["reason"] == "request"
    assert body["summary"] and isinstance(body["signals"], dict)
    assert body["ticket"] == escalation.ticket.pk
    assert [event["kind"] for event in body["events"]] == ["escalated"]


def test_escalate_by_hand_then_again(api, conversation):
    url = f"/api/v1/conversations/{conversation.pk}/escalate/"
    first = api.post(url, {"priority": "high", "detail": "VIP customer"}, format="json")
    assert first.status_code == 201, first.content
    assert (first.json()["reason"], first.json()["priority"]) == ("manual", "high")
    assert first.json()["triggered_by"] == "api"
    again = api.post(url, {"priority": "urgent"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["priority"] == "urgent"


def test_escalating_a_closed_conversation_is_409(api):
    conversation = ConversationFactory(mode=Conversation.Mode.CLOSED)
    response = api.post(f"/api/v1/conversations/{conversation.pk}/escalate/", {}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_transition"


def test_take_over_acts_as_the_tokens_owner(api, agent):
    escalation = escalate()
    response = api.post(f"{URL}{escalation.pk}/take-over/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "claimed"
    assert response.json()["claimed_by"] == {"id": agent.pk, "name": "Marina"}
    conversation = Conversation.objects.get(pk=escalation.conversation_id)
    assert (conversation.mode, conversation.assigned_agent_id) == ("agent", agent.pk)
    # the winner clicking again is harmless
    assert api.post(f"{URL}{escalation.pk}/take-over/").status_code == 200


def test_take_over_of_a_claimed_escalation_is_409_naming_the_agent(api, other_agent):
    escalation = escalate()
    assert api.post(f"{URL}{escalation.pk}/take-over/").status_code == 200
    response = token_client(other_agent).post(f"{URL}{escalation.pk}/take-over/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "already_claimed"
    assert "Marina" in error["message"] and error["agent"] == "Marina"


def test_read_only_token_cannot_take_over(reader):
    escalation = escalate()
    response = reader.post(f"{URL}{escalation.pk}/take-over/")
    assert response.status_code == 403
    assert error_of(response)["code"] == "insufficient_scope"
    assert Escalation.objects.get(pk=escalation.pk).status == "queued"


def test_take_over_of_a_missing_escalation_is_404(api):
    response = api.post(f"{URL}424242/take-over/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_resolve_then_close(api):
    escalation = escalate()
    api.post(f"{URL}{escalation.pk}/take-over/")
    resolved = api.post(f"{URL}{escalation.pk}/resolve/", {"note": "refunded"}, format="json")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert escalation.ticket.__class__.objects.get(pk=escalation.ticket.pk).status == "resolved"
    closed = api.post(f"{URL}{escalation.pk}/close/", {}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert Conversation.objects.get(pk=escalation.conversation_id).mode == "closed"
    again = api.post(f"{URL}{escalation.pk}/close/", {}, format="json")
    assert again.status_code == 409


def test_resolving_a_queued_escalation_is_409(api):
    escalation = escalate()
    response = api.post(f"{URL}{escalation.pk}/resolve/", {}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_transition"


def test_closing_unresolved_needs_a_reason(api):
    escalation = escalate()
    response = api.post(f"{URL}{escalation.pk}/close/", {"reason": ""}, format="json")
    assert response.status_code == 409  # it depends on the escalation's state
    assert error_of(response)["code"] == "reason_required"
    response = api.post(f"{URL}{escalation.pk}/close/", {"reason": "spam"}, format="json")
    assert response.status_code == 200


def test_only_the_owner_resolves(api, other_agent):
    escalation = escalate()
    api.post(f"{URL}{escalation.pk}/take-over/")
    response = token_client(other_agent).post(f"{URL}{escalation.pk}/resolve/", {}, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "not_your_escalation"


def test_reassign_to_an_agent_and_back_to_the_queue(api, other_agent):
    escalation = escalate()
    api.post(f"{URL}{escalation.pk}/take-over/")
    response = api.post(f"{URL}{escalation.pk}/reassign/", {"agent": other_agent.pk}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["claimed_by"]["id"] == other_agent.pk
    back = token_client(other_agent).post(
        f"{URL}{escalation.pk}/reassign/", {"note": "later"}, format="json"
    )
    assert back.status_code == 200 and back.json()["status"] == "queued"


def test_reassign_to_someone_who_is_not_an_agent_is_a_404(api):
    escalation = escalate()
    response = api.post(f"{URL}{escalation.pk}/reassign/", {"agent": 999999}, format="json")
    assert response.status_code == 404  # a reference to nothing, like a URL to nothing
    assert error_of(response)["code"] == "not_found"


def test_reassign_to_an_agent_of_another_team_moves_it_to_that_team(api, other_agent):
    team = TeamFactory(name="Escalations L2")
    escalation = escalate()
    response = api.post(
        f"{URL}{escalation.pk}/reassign/",
        {"agent": other_agent.pk, "team": team.pk},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["team"] == {"id": team.pk, "name": "Escalations L2"}
    assert body["status"] == "claimed"


def test_reassign_to_a_team(api):
    team = TeamFactory(name="Escalations L2")
    escalation = escalate()
    response = api.post(f"{URL}{escalation.pk}/reassign/", {"team": team.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["team"] == {"id": team.pk, "name": "Escalations L2"}


def test_a_non_staff_session_has_no_scopes(client, db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("shopper", password="pw", is_staff=False)
    client.force_login(user)
    assert client.get(URL).status_code == 403


def test_staff_session_works_for_the_browsable_api(client, agent):
    client.force_login(agent)
    assert client.get(URL).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/escalations/",
        "/api/v1/conversations/",
        "/api/v1/tickets/",
        "/api/v1/metrics/escalations/",
        "/api/v1/agents/me/availability/",
    ],
)
def test_the_browsable_api_renders_for_staff(client, agent, path):
    client.force_login(agent)
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code in (200, 405)
    assert b"<html" in response.content.lower()
