"""Tickets over the API: list, read, and changes that go through the ticket services."""

import pytest

from escalation import services as escalation_services
from escalation.models import Priority
from tests.api.conftest import error_of
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/tickets/"


def escalated(conversation=None):
    escalation, _ = escalation_services.escalate_conversation(
        conversation=conversation or ConversationFactory(),
        reason="complexity",
        priority=Priority.HIGH,
        triggered_by="detection",
    )
    return escalation


def test_tickets_of_a_conversation(api, conversation):
    escalation = escalated(conversation)
    escalated()
    rows = api.get(URL, {"conversation": conversation.pk}).json()["results"]
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == escalation.ticket.pk
    assert row["reference"] == escalation.ticket.reference
    assert (row["status"], row["assignee"], row["escalation"]) == ("open", None, escalation.pk)
    assert row["priority"] == "high"


def test_filters_by_status_and_assignee(api, agent):
    mine = escalated()
    escalated()
    api.post(f"/api/v1/escalations/{mine.pk}/take-over/")
    rows = api.get(URL, {"assignee": agent.pk}).json()["results"]
    assert [row["id"] for row in rows] == [mine.ticket.pk]
    assert rows[0]["assignee"] == {"id": agent.pk, "name": "Marina"}
    assert len(api.get(URL, {"unassigned": "true"}).json()["results"]) == 1
    assert api.get(URL, {"status": "closed"}).json()["results"] == []


def test_read_one_with_history(api):
    ticket = escalated().ticket
    body = api.get(f"{URL}{ticket.pk}/").json()
    assert body["reference"] == ticket.reference
    assert [event["kind"] for event in body["events"]] == ["opened"]


def test_change_status_priority_and_assignee_leaves_history(api, agent, other_agent):
    ticket = escalated().ticket
    response = api.patch(
        f"{URL}{ticket.pk}/",
        {"status": "pending", "priority": "urgent", "assignee": other_agent.pk, "note": "waiting"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["priority"]) == ("pending", "urgent")
    assert body["assignee"]["id"] == other_agent.pk
    kinds = [event["kind"] for event in body["events"]]
    assert kinds == ["opened", "assigned", "priority", "status"]
    assert body["events"][-1]["actor"]["id"] == agent.pk


def test_an_impossible_status_move_is_409(api):
    ticket = escalated().ticket
    api.patch(f"{URL}{ticket.pk}/", {"status": "closed"}, format="json")
    response = api.patch(f"{URL}{ticket.pk}/", {"status": "pending"}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_transition"


def test_a_failed_change_changes_nothing(api, other_agent):
    ticket = escalated().ticket
    api.patch(f"{URL}{ticket.pk}/", {"status": "closed"}, format="json")
    response = api.patch(
        f"{URL}{ticket.pk}/", {"assignee": other_agent.pk, "status": "pending"}, format="json"
    )
    assert response.status_code == 409
    ticket.refresh_from_db()
    assert ticket.assignee_id is None  # the assignment rolled back with the refused move


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"status": "lost"}, "status"),
        ({"assignee": 999999}, "assignee"),
        ({"priority": 3}, "priority"),
    ],
)
def test_bad_changes_are_400(api, body, field):
    ticket = escalated().ticket
    response = api.patch(f"{URL}{ticket.pk}/", body, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert field in error.get("fields", {}) or (field == "non_field_errors" and error["message"])


def test_reader_cannot_change_a_ticket(reader):
    ticket = escalated().ticket
    assert (
        reader.patch(f"{URL}{ticket.pk}/", {"status": "pending"}, format="json").status_code == 403
    )
    assert reader.get(f"{URL}{ticket.pk}/").status_code == 200


def test_missing_ticket_is_404(api):
    assert api.get(f"{URL}999999/").status_code == 404
    assert api.patch(f"{URL}999999/", {"status": "open"}, format="json").status_code == 404
